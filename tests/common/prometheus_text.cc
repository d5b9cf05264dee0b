#include "tests/common/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ropewire::testing {
namespace {

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

absl::Status Bad(int line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

absl::StatusOr<double> ParseValue(const std::string& text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) return absl::InvalidArgumentError("not a number: " + text);
  return value;
}

// Parses `{a="x",b="y"}` starting at text[*pos] == '{'.
absl::Status ParseLabels(const std::string& text, size_t* pos,
                         std::map<std::string, std::string>* labels) {
  size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    size_t start = i;
    while (i < text.size() && IsNameChar(text[i], i == start)) ++i;
    const std::string name = text.substr(start, i - start);
    if (name.empty() || i + 1 >= text.size() || text[i] != '=' || text[i + 1] != '"')
      return absl::InvalidArgumentError("malformed label");
    i += 2;
    std::string value;
    for (; i < text.size() && text[i] != '"'; ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {
        const char next = text[++i];
        if (next == 'n')
          value.push_back('\n');
        else if (next == '\\' || next == '"')
          value.push_back(next);
        else
          return absl::InvalidArgumentError("bad escape in a label value");
      } else {
        value.push_back(text[i]);
      }
    }
    if (i >= text.size()) return absl::InvalidArgumentError("unterminated label value");
    ++i;  // the closing quote
    if (!labels->emplace(name, value).second)
      return absl::InvalidArgumentError("label " + name + " repeated");
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return absl::InvalidArgumentError("unterminated label set");
  *pos = i + 1;
  return absl::OkStatus();
}

// The family a sample belongs to: its own name, or a histogram's base name.
std::string FamilyOf(const std::string& sample, const std::map<std::string, PromFamily>& families) {
  if (families.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(sample, suffix)) {
      const std::string base = sample.substr(0, sample.size() - std::string(suffix).size());
      auto it = families.find(base);
      if (it != families.end() && (it->second.type == "histogram" || it->second.type == "summary"))
        return base;
    }
  }
  return "";
}

absl::Status CheckHistogram(const PromFamily& family) {
  // Group the series by their labels other than `le`.
  std::map<std::map<std::string, std::string>, std::vector<const PromSample*>> series;
  for (const PromSample& s : family.samples) {
    auto labels = s.labels;
    labels.erase("le");
    series[labels].push_back(&s);
  }
  for (const auto& [labels, samples] : series) {
    double last = -1, inf = -1, count = -1;
    bool has_sum = false;
    for (const PromSample* s : samples) {
      if (s->name == family.name + "_bucket") {
        auto le = s->labels.find("le");
        if (le == s->labels.end())
          return absl::InvalidArgumentError(family.name + ": bucket without le");
        if (s->value < last)
          return absl::InvalidArgumentError(family.name + ": buckets not cumulative");
        last = s->value;
        if (le->second == "+Inf") inf = s->value;
      } else if (s->name == family.name + "_count") {
        count = s->value;
      } else if (s->name == family.name + "_sum") {
        has_sum = true;
      }
    }
    if (inf < 0 || count < 0 || !has_sum || inf != count)
      return absl::InvalidArgumentError(family.name + ": needs +Inf bucket == _count and a _sum");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PromScrape> PromScrape::Parse(const std::string& text) {
  PromScrape scrape;
  int line_number = 0;
  for (absl::string_view line_view : absl::StrSplit(text, '\n')) {
    const std::string line(line_view);
    ++line_number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::vector<std::string> words = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (words.size() < 3) return Bad(line_number, "short comment line");
      PromFamily& family = scrape.families_[words[2]];
      family.name = words[2];
      if (words[1] == "TYPE") family.type = words.size() > 3 ? words[3] : "";
      if (words[1] == "HELP") family.help = words.size() > 3 ? words[3] : "";
      continue;
    }
    PromSample sample;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) ++i;
    sample.name = line.substr(0, i);
    if (sample.name.empty()) return Bad(line_number, "no metric name");
    if (i < line.size() && line[i] == '{') {
      if (absl::Status s = ParseLabels(line, &i, &sample.labels); !s.ok())
        return Bad(line_number, std::string(s.message()));
    }
    if (i >= line.size() || line[i] != ' ') return Bad(line_number, "no value");
    std::vector<std::string> rest = absl::StrSplit(line.substr(i + 1), ' ');
    auto value = ParseValue(rest[0]);
    if (!value.ok()) return Bad(line_number, std::string(value.status().message()));
    sample.value = *value;
    const std::string family = FamilyOf(sample.name, scrape.families_);
    if (family.empty() || scrape.families_[family].type.empty())
      return Bad(line_number, sample.name + " has no # TYPE line before it");
    scrape.families_[family].samples.push_back(std::move(sample));
  }
  for (const auto& [name, family] : scrape.families_) {
    if (family.type == "histogram") {
      if (absl::Status s = CheckHistogram(family); !s.ok()) return s;
    }
  }
  return scrape;
}

const PromFamily* PromScrape::Family(const std::string& name) const {
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : &it->second;
}

std::optional<double> PromScrape::Value(const std::string& name,
                                        const std::map<std::string, std::string>& labels) const {
  const std::string family = FamilyOf(name, families_);
  if (family.empty()) return std::nullopt;
  for (const PromSample& s : families_.at(family).samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

double PromScrape::ValueOr0(const std::string& name,
                            const std::map<std::string, std::string>& labels) const {
  return Value(name, labels).value_or(0);
}

}  // namespace ropewire::testing
