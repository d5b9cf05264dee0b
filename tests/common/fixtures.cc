#include "tests/common/fixtures.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "nlohmann/json.hpp"

namespace ropewire::testing {

std::string SourceDir() {
  const char* moved = std::getenv("ROPEWIRE_SOURCE_DIR");
  return moved != nullptr && *moved != '\0' ? moved : ROPEWIRE_SOURCE_DIR;
}

std::string FixtureDir(const std::string& name) {
  return SourceDir() + "/tests/fixtures/models/" + name;
}

std::vector<GoldenCase> LoadGolden(const std::string& name) {
  std::ifstream in(FixtureDir(name) + "/golden.json");
  if (!in) throw std::runtime_error("missing golden.json for fixture " + name);
  const nlohmann::json golden = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : golden.at("cases")) {
    GoldenCase g;
    g.prompt = c.at("prompt_token_ids").get<std::vector<int32_t>>();
    g.logits = c.at("logits").get<std::vector<std::vector<float>>>();
    g.greedy = c.at("greedy_token_ids").get<std::vector<int32_t>>();
    g.greedy_margins = c.at("greedy_margins").get<std::vector<float>>();
    cases.push_back(std::move(g));
  }
  return cases;
}

double RelativeError(const float* actual, const std::vector<float>& expected) {
  double max_diff = 0.0;
  double max_ref = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!std::isfinite(actual[i])) return INFINITY;
    max_diff = std::max(max_diff, std::abs(double(actual[i]) - expected[i]));
    max_ref = std::max(max_ref, std::abs(double(expected[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

std::vector<std::string> AllModelFixtures() {
  std::vector<std::string> names;
  const std::string root = SourceDir() + "/tests/fixtures/models";
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (std::filesystem::exists(entry.path() / "golden.json")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ropewire::testing
