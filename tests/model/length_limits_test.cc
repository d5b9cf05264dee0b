// max_model_len: absolute encodings serve no position beyond their table; RoPE and ALiBi models
// serve up to their configured maximum; the runner refuses a step that goes further with a
// clear error, and refuses an override beyond an absolute table.
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/executor.h"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<StepExecutor> Runner(const std::string& fixture, int64_t max_model_len = 0) {
  ExecutorOptions options;
  options.num_blocks = 64;
  options.block_size = 4;
  options.max_model_len = max_model_len;
  auto runner = LoadExecutor(ropewire::testing::FixtureDir(fixture), options);
  EXPECT_TRUE(runner.ok()) << runner.status();
  return runner.ok() ? std::move(*runner) : nullptr;
}

// One step holding `length` tokens of one sequence whose positions start at `offset`.
absl::Status RunPrompt(StepExecutor& runner, int length, int offset = 0) {
  StepPlan plan;
  std::vector<int32_t> blocks((length + 3) / 4);
  std::iota(blocks.begin(), blocks.end(), 0);
  plan.AddSequence(7, std::vector<int32_t>(length, 3), 0, offset, blocks, true);
  plan.Finalize(runner.block_size());
  std::vector<float> logits;
  return runner.Execute(plan, &logits);
}

TEST(LengthLimits, LearnedTableBoundsGpt2) {
  auto runner = Runner("gpt2");
  ASSERT_NE(runner, nullptr);
  EXPECT_EQ(runner->max_model_len(), 128);
  EXPECT_TRUE(RunPrompt(*runner, 128).ok());
  const absl::Status s = RunPrompt(*runner, 129);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("reaches position 128 but the model serves 128 positions"));
  // A position offset counts too.
  EXPECT_FALSE(RunPrompt(*runner, 100, 40).ok());
}

TEST(LengthLimits, OptAndXglmTables) {
  for (const char* fixture : {"opt", "xglm"}) {
    auto runner = Runner(fixture);
    ASSERT_NE(runner, nullptr);
    EXPECT_EQ(runner->max_model_len(), 128) << fixture;
    EXPECT_FALSE(RunPrompt(*runner, 129).ok()) << fixture;
  }
}

TEST(LengthLimits, OverrideCannotExceedAnAbsoluteTable) {
  ExecutorOptions options;
  options.num_blocks = 8;
  options.max_model_len = 129;
  auto runner = LoadExecutor(ropewire::testing::FixtureDir("gpt2"), options);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.status().message(), HasSubstr("learned position table"));
}

TEST(LengthLimits, RopeLimitComesFromConfigAndScaling) {
  EXPECT_EQ(Runner("llama_dynamic")->max_model_len(), 128);  // 64 × factor 2
  EXPECT_EQ(Runner("llama_yarn")->max_model_len(), 128);     // max(128, 32 × 4)
  EXPECT_EQ(Runner("gptj")->max_model_len(), 128);           // n_positions
  auto runner = Runner("llama_gqa", 40);                     // an explicit, lower limit
  EXPECT_TRUE(RunPrompt(*runner, 40).ok());
  EXPECT_FALSE(RunPrompt(*runner, 41).ok());
}

TEST(LengthLimits, AlibiWithoutTrainedLengthIsUnbounded) {
  auto runner = Runner("bloom_alibi6");
  EXPECT_EQ(runner->max_model_len(), kUnboundedModelLength);
  EXPECT_TRUE(RunPrompt(*runner, 8, 100000).ok());  // shifted far beyond any trained length
}

}  // namespace
}  // namespace ropewire::model
