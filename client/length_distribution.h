// Prompt and output lengths for the load generator: fixed, uniform or (capped) exponential.
#pragma once

#include <random>
#include <string>

#include "absl/status/statusor.h"

namespace ropewire::client {

class LengthDistribution {
 public:
  // Specs: "N" or "fixed:N"; "uniform:A,B" (inclusive); "exponential:MEAN" or
  // "exponential:MEAN,CAP" (CAP defaults to 4 x MEAN; a real-traffic-like long tail that stays
  // bounded so one request cannot exceed the model's length). Lengths are at least 1.
  static absl::StatusOr<LengthDistribution> Parse(const std::string& spec,
                                                  const std::string& flag_name);

  int Sample(std::mt19937_64& rng) const;
  int max() const { return max_; }
  std::string ToString() const;

 private:
  enum class Kind { kFixed, kUniform, kExponential };
  Kind kind_ = Kind::kFixed;
  int min_ = 1;
  int max_ = 1;
  double mean_ = 1;
};

}  // namespace ropewire::client
