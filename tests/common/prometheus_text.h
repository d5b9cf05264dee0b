// A parser for the Prometheus text exposition format (version 0.0.4), strict enough to catch a
// malformed scrape: every sample must belong to a family announced by # TYPE, label values must
// be properly quoted and escaped, values must be numbers, and histograms must be whole (buckets
// with `le`, cumulative counts that never fall, a +Inf bucket equal to _count, and a _sum).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ropewire::testing {

struct PromSample {
  std::string name;  // e.g. ropewire_time_to_first_token_seconds_bucket
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromFamily {
  std::string name;
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;
  std::vector<PromSample> samples;
};

class PromScrape {
 public:
  static absl::StatusOr<PromScrape> Parse(const std::string& text);

  const PromFamily* Family(const std::string& name) const;
  // The value of the sample `name` with exactly `labels`; nullopt when there is none.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const;
  // Value() or 0: a counter series that has not been created yet counts nothing.
  double ValueOr0(const std::string& name,
                  const std::map<std::string, std::string>& labels = {}) const;
  const std::map<std::string, PromFamily>& families() const { return families_; }

 private:
  std::map<std::string, PromFamily> families_;
};

}  // namespace ropewire::testing
