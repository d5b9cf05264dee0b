// Shared helpers for tests that use the committed model fixtures and their goldens
// (written by tools/make_fixtures.py with transformers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ropewire::testing {

struct GoldenCase {
  std::vector<int32_t> prompt;
  std::vector<std::vector<float>> logits;  // [prompt position][vocab]
  std::vector<int32_t> greedy;             // 32 tokens, EOS ignored
  std::vector<float> greedy_margins;       // top-1 minus top-2 logit at each greedy step
};

// The source tree: $ROPEWIRE_SOURCE_DIR when set (test binaries run from a copy of the tree on
// another machine, scripts/gpu-check.sh), else the tree they were built from.
std::string SourceDir();
std::string FixtureDir(const std::string& name);  // tests/fixtures/models/<name>
std::vector<GoldenCase> LoadGolden(const std::string& name);

// max |a - b| / max |b|: relative error of a row against its reference.
double RelativeError(const float* actual, const std::vector<float>& expected);

// Names of every model fixture with a golden.json.
std::vector<std::string> AllModelFixtures();

}  // namespace ropewire::testing
