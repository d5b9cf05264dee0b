// The CUDA executor end to end: every fixture family on the GPU against transformers'
// goldens and against the CPU path, in bf16 and fp16 storage, plus random Llama-shaped models
// with the head dims production models use (64 and 128), alone and in mixed batches. Skips,
// saying so, where no GPU is visible.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>

#include "bench/model/random_llama.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device.h"
#include "model/executor.h"
#include "model/greedy.h"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ropewire::testing::AllModelFixtures;
using ropewire::testing::FixtureDir;
using ropewire::testing::GoldenCase;
using ropewire::testing::LoadGolden;
using ropewire::testing::RelativeError;

#define SKIP_WITHOUT_GPU()                                                                      \
  do {                                                                                          \
    if (kernels::cuda::DeviceCount() == 0) {                                                    \
      GTEST_SKIP() << "no CUDA device visible: the CUDA executor is compiled but not run here"; \
    }                                                                                           \
  } while (0)

// Logit error (max |gpu - ref| / max |ref| over a row) allowed for 16-bit storage: weights,
// activations and the KV cache each round to 8 (bf16) or 11 (fp16) mantissa bits, f32
// accumulation everywhere.
double Tolerance(const std::string& dtype) { return dtype == "bf16" ? 4e-2 : 1e-2; }
// Greedy tokens must agree while the reference's top-1 lead over top-2 is at least this (in
// logit units); past a closer call either answer is within 16-bit rounding.
float GreedyMargin(const std::string& dtype) { return dtype == "bf16" ? 0.1f : 0.03f; }

struct Case {
  std::string fixture;
  std::string dtype;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture << " " << c.dtype; }

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const std::string& f : AllModelFixtures()) {
    for (const char* dtype : {"bf16", "fp16"}) cases.push_back({f, dtype});
  }
  return cases;
}

absl::StatusOr<std::unique_ptr<StepExecutor>> LoadOnGpu(const std::string& dir,
                                                        const std::string& dtype, int block_size) {
  ExecutorOptions options;
  options.device = "cuda";
  options.dtype = dtype;
  options.num_blocks = 512;
  options.block_size = block_size;
  options.max_num_batched_tokens = 256;
  return LoadExecutor(dir, options);
}

// Loads a fixture on the GPU into `gpu`, skipping the test for the layouts the CUDA backend
// refuses by design (post-norm residuals run on the CPU only).
#define LOAD_FIXTURE_ON_GPU(gpu, fixture, dtype)                          \
  auto gpu##_loaded = LoadOnGpu(FixtureDir(fixture), dtype, 4);           \
  if (gpu##_loaded.status().code() == absl::StatusCode::kUnimplemented) { \
    GTEST_SKIP() << gpu##_loaded.status();                                \
  }                                                                       \
  ASSERT_TRUE(gpu##_loaded.ok()) << gpu##_loaded.status();                \
  std::unique_ptr<StepExecutor> gpu = std::move(*gpu##_loaded)

class CudaFixtureTest : public ::testing::TestWithParam<Case> {};

TEST_P(CudaFixtureTest, PromptLogitsMatchTransformers) {
  SKIP_WITHOUT_GPU();
  const Case& c = GetParam();
  LOAD_FIXTURE_ON_GPU(gpu, c.fixture, c.dtype);
  const int64_t vocab = gpu->config().vocab_size;
  double worst = 0;
  for (const GoldenCase& golden : LoadGolden(c.fixture)) {
    GreedyOptions options;
    options.max_tokens = 0;
    options.keep_prompt_logits = true;  // the whole prompt in one step: every row is a reference
    auto result = GenerateGreedy(*gpu, golden.prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    for (size_t pos = 0; pos < golden.prompt.size(); ++pos) {
      const double err =
          RelativeError(result->prompt_logits.data() + pos * vocab, golden.logits[pos]);
      worst = std::max(worst, err);
      EXPECT_LE(err, Tolerance(c.dtype)) << "position " << pos;
    }
  }
  std::printf("%s %s: worst relative logit error %.3g\n", c.fixture.c_str(), c.dtype.c_str(),
              worst);
}

TEST_P(CudaFixtureTest, GreedyTokensMatchTheCpuPath) {
  SKIP_WITHOUT_GPU();
  const Case& c = GetParam();
  LOAD_FIXTURE_ON_GPU(gpu, c.fixture, c.dtype);
  ExecutorOptions cpu_options;
  cpu_options.num_blocks = 512;
  cpu_options.block_size = 4;
  auto cpu = LoadExecutor(FixtureDir(c.fixture), cpu_options);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  if (gpu->PositionTableKey(1) != gpu->PositionTableKey(1 << 20)) {
    GTEST_SKIP() << "length-dependent RoPE: decoding across a table change needs the scheduler's "
                    "recompute (covered by the engine on the CPU)";
  }
  int compared = 0;
  for (const GoldenCase& golden : LoadGolden(c.fixture)) {
    GreedyOptions options;
    options.max_tokens = static_cast<int>(golden.greedy.size());
    options.stop_at_eos = false;
    auto on_gpu = GenerateGreedy(*gpu, golden.prompt, options);
    auto on_cpu = GenerateGreedy(**cpu, golden.prompt, options);
    ASSERT_TRUE(on_gpu.ok()) << on_gpu.status();
    ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
    ASSERT_EQ(on_cpu->tokens, golden.greedy);  // the CPU path is transformers' (golden tests)
    for (size_t i = 0; i < golden.greedy.size(); ++i) {
      if (golden.greedy_margins[i] < GreedyMargin(c.dtype)) break;  // a near tie: stop comparing
      EXPECT_EQ(on_gpu->tokens[i], on_cpu->tokens[i]) << "generated token " << i;
      ++compared;
      if (on_gpu->tokens[i] != on_cpu->tokens[i]) break;
    }
  }
  std::printf("%s %s: %d greedy tokens compared\n", c.fixture.c_str(), c.dtype.c_str(), compared);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixtureTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.fixture + "_" + info.param.dtype;
                         });

// Random Llama-shaped checkpoints with production head dims, written at test time.
class CudaRandomLlamaTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    const int head_dim = GetParam();
    bench::LlamaShape shape{"gpu-test", 512, 4 * head_dim, 8 * head_dim, 2, 4, 2};
    auto dir = bench::ScratchDir::Create("/tmp", "ropewire-cuda-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    ASSERT_TRUE(bench::WriteRandomLlama(shape, 99, dir->path()).ok());
    ExecutorOptions cpu_options;
    cpu_options.num_blocks = 256;
    auto cpu = LoadExecutor(dir->path(), cpu_options);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    cpu_ = std::move(*cpu);
    auto gpu = LoadOnGpu(dir->path(), "bf16", 16);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
  }

  std::unique_ptr<StepExecutor> cpu_;
  std::unique_ptr<StepExecutor> gpu_;
};

// Prompts long enough to span many blocks (and the decode kernel's sequence split), each alone
// on the CPU and all together in one GPU step beside decodes of the others.
TEST_P(CudaRandomLlamaTest, MixedBatchMatchesTheCpuPath) {
  const int64_t vocab = gpu_->config().vocab_size;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab) - 1);
  const std::vector<int> lengths = {1, 17, 300, 1100};
  StepPlan plan;
  int next_block = 0;
  std::vector<std::vector<float>> expected;
  for (size_t s = 0; s < lengths.size(); ++s) {
    std::vector<int32_t> prompt(lengths[s]);
    for (int32_t& t : prompt) t = token(rng);
    GreedyOptions options;
    options.max_tokens = 0;
    auto alone = GenerateGreedy(*cpu_, prompt, options);
    ASSERT_TRUE(alone.ok()) << alone.status();
    expected.push_back(alone->last_logits);
    // Blocks handed out in reverse so tables are neither contiguous nor ordered.
    std::vector<int32_t> blocks((lengths[s] + 15) / 16);
    for (int32_t& b : blocks) b = 255 - next_block++;
    plan.AddSequence(static_cast<int64_t>(s), prompt, 0, 0, blocks, /*want_logits=*/true);
  }
  plan.Finalize(16);
  std::vector<float> logits;
  ASSERT_TRUE(gpu_->Execute(plan, &logits).ok());
  ASSERT_EQ(logits.size(), lengths.size() * vocab);
  for (size_t s = 0; s < lengths.size(); ++s) {
    EXPECT_LE(RelativeError(logits.data() + s * vocab, expected[s]), Tolerance("bf16"))
        << "prompt of " << lengths[s] << " tokens";
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDims, CudaRandomLlamaTest, ::testing::Values(64, 128));

TEST(CudaExecutor, RefusesWithoutADevice) {
  if (kernels::cuda::DeviceCount() > 0) GTEST_SKIP() << "a GPU is visible";
  ExecutorOptions options;
  options.device = "cuda";
  auto runner = LoadExecutor(FixtureDir("llama_gqa"), options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(runner.status().message().find("no CUDA device"), std::string::npos);
}

}  // namespace
}  // namespace ropewire::model
