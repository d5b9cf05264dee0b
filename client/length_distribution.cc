#include "client/length_distribution.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ropewire::client {

absl::StatusOr<LengthDistribution> LengthDistribution::Parse(const std::string& spec,
                                                             const std::string& flag_name) {
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag_name, " \"", spec, "\": ", why,
                     " (use N, uniform:A,B or exponential:MEAN[,CAP])"));
  };
  std::string kind = "fixed";
  std::string args = spec;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    kind = spec.substr(0, colon);
    args = spec.substr(colon + 1);
  }
  std::vector<int> numbers;
  for (absl::string_view part : absl::StrSplit(args, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n)) return bad(absl::StrCat("\"", part, "\" is not an integer"));
    if (n < 1) return bad("lengths must be >= 1");
    numbers.push_back(n);
  }
  LengthDistribution d;
  if (kind == "fixed") {
    if (numbers.size() != 1) return bad("fixed takes one length");
    d.kind_ = Kind::kFixed;
    d.min_ = d.max_ = numbers[0];
  } else if (kind == "uniform") {
    if (numbers.size() != 2 || numbers[0] > numbers[1]) return bad("uniform takes A,B with A <= B");
    d.kind_ = Kind::kUniform;
    d.min_ = numbers[0];
    d.max_ = numbers[1];
  } else if (kind == "exponential") {
    if (numbers.empty() || numbers.size() > 2) return bad("exponential takes MEAN or MEAN,CAP");
    d.kind_ = Kind::kExponential;
    d.mean_ = numbers[0];
    d.min_ = 1;
    d.max_ = numbers.size() == 2 ? numbers[1] : 4 * numbers[0];
  } else {
    return bad("unknown distribution \"" + kind + "\"");
  }
  return d;
}

int LengthDistribution::Sample(std::mt19937_64& rng) const {
  switch (kind_) {
    case Kind::kFixed: return min_;
    case Kind::kUniform: return std::uniform_int_distribution<int>(min_, max_)(rng);
    case Kind::kExponential: {
      const double x = std::exponential_distribution<double>(1.0 / mean_)(rng);
      return std::clamp(static_cast<int>(std::lround(x)), 1, max_);
    }
  }
  return min_;
}

std::string LengthDistribution::ToString() const {
  switch (kind_) {
    case Kind::kFixed: return absl::StrCat(min_);
    case Kind::kUniform: return absl::StrCat("uniform:", min_, ",", max_);
    case Kind::kExponential: return absl::StrCat("exponential:", mean_, ",", max_);
  }
  return "";
}

}  // namespace ropewire::client
