// ropewire-generate as a user runs it: a real process on a fixture directory.
#include <sys/wait.h>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ::testing::HasSubstr;

struct ProcessResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

ProcessResult Generate(const std::string& args) {
  const std::string command =
      std::string(ROPEWIRE_BINARY_DIR) + "/model/ropewire-generate " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string Ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

TEST(GenerateCli, GreedyMatchesReference) {
  for (const char* fixture : {"llama_gqa", "qwen2_bias", "llama_sharded"}) {
    const auto golden = ropewire::testing::LoadGolden(fixture).front();
    const ProcessResult run =
        Generate("--model " + ropewire::testing::FixtureDir(fixture) + " --prompt-token-ids " +
                 Ids(golden.prompt) + " --max-tokens 32 --ignore-eos");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(nlohmann::json::parse(run.output).get<std::vector<int32_t>>(), golden.greedy)
        << fixture;
  }
}

TEST(GenerateCli, LogitsOfLastPromptPosition) {
  const auto golden = ropewire::testing::LoadGolden("llama_gqa").front();
  const ProcessResult run =
      Generate("--model " + ropewire::testing::FixtureDir("llama_gqa") + " --prompt-token-ids " +
               Ids(golden.prompt) + " --max-tokens 0 --logits");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto out = nlohmann::json::parse(run.output);
  const auto logits = out.at("logits").get<std::vector<float>>();
  EXPECT_TRUE(out.at("token_ids").empty());
  EXPECT_LE(ropewire::testing::RelativeError(logits.data(), golden.logits.back()), 1e-4);
}

TEST(GenerateCli, InfoReportsResolvedEncoding) {
  const ProcessResult run =
      Generate("--model " + ropewire::testing::FixtureDir("llama_linear_v4keys") + " --info");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto info = nlohmann::json::parse(run.output);
  EXPECT_EQ(info["position_encoding"]["rope_type"], "linear");
  EXPECT_EQ(info["position_encoding"]["rotary_dim"], 16);
  EXPECT_EQ(info["num_kv_heads"], 2);
}

TEST(GenerateCli, ErrorsAreReportedNotCrashed) {
  const std::string model = "--model " + ropewire::testing::FixtureDir("llama_gqa");
  ProcessResult run = Generate("--model /nonexistent/model --prompt-token-ids 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("/nonexistent/model/config.json"));

  run = Generate(model + " --prompt-token-ids 1,x,3");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("--prompt-token-ids"));

  run = Generate(model + " --prompt-token-ids 1,99999");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("token id 99999 outside the vocabulary"));

  run = Generate("--prompt-token-ids 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.output, HasSubstr("--model is required"));
}

}  // namespace
}  // namespace ropewire::model
