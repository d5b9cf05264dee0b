// Every fixture family stored in the other weight formats: in bf16 (weights and KV cache)
// against transformers' goldens within bf16's rounding; in int8 and int4 against ropewire's own
// f32 path on the same weights (cosine similarity of the logits: quantization's error, not a
// mismatch with the reference, is what is measured); and the flag combinations that cannot work
// refused by name.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/executor.h"
#include "model/families/checkpoint_loader.h"
#include "model/greedy.h"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ropewire::testing::AllModelFixtures;
using ropewire::testing::FixtureDir;
using ropewire::testing::GoldenCase;
using ropewire::testing::LoadGolden;
using ropewire::testing::RelativeError;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<StepExecutor>> Load(const std::string& fixture,
                                                   const std::string& weight_dtype,
                                                   const std::string& quantization,
                                                   const std::string& kv_cache_dtype) {
  ExecutorOptions options;
  options.num_blocks = 256;
  options.block_size = 4;
  options.weight_dtype = weight_dtype;
  options.quantization = quantization;
  options.kv_cache_dtype = kv_cache_dtype;
  return LoadExecutor(FixtureDir(fixture), options);
}

// Logits of every prompt position, the whole prompt in one step.
std::vector<float> PromptLogits(StepExecutor& executor, const std::vector<int32_t>& prompt) {
  GreedyOptions options;
  options.max_tokens = 0;
  options.keep_prompt_logits = true;
  auto result = GenerateGreedy(executor, prompt, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->prompt_logits : std::vector<float>();
}

double Cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i)
    ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

// Relative logit error bf16 storage may cause: weights and cached keys/values each lose
// mantissa bits below 2^-8 relative; the tiny fixtures' large logits amplify it to a few %.
constexpr double kBf16Tolerance = 4e-2;
// Greedy tokens must agree while the reference's top-1 lead is at least this (logit units).
constexpr float kBf16GreedyMargin = 0.1f;

class Bf16FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16FixtureTest, KeepsTheGoldensWithinBf16Rounding) {
  auto executor = Load(GetParam(), "bf16", "none", "bf16");
  ASSERT_TRUE(executor.ok()) << executor.status();
  const int64_t vocab = (*executor)->config().vocab_size;
  double worst = 0;
  int compared = 0;
  for (const GoldenCase& golden : LoadGolden(GetParam())) {
    const std::vector<float> logits = PromptLogits(**executor, golden.prompt);
    ASSERT_EQ(logits.size(), golden.prompt.size() * vocab);
    // The reference's last row always covers the whole prompt (length-dependent RoPE included).
    const size_t last = golden.prompt.size() - 1;
    const double err = RelativeError(logits.data() + last * vocab, golden.logits[last]);
    worst = std::max(worst, err);
    EXPECT_LE(err, kBf16Tolerance) << "prompt of " << golden.prompt.size();
    if (golden.greedy_margins.empty() || golden.greedy_margins[0] < kBf16GreedyMargin) continue;
    GreedyOptions options;
    options.max_tokens = 1;
    options.stop_at_eos = false;
    auto first = GenerateGreedy(**executor, golden.prompt, options);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->tokens.front(), golden.greedy.front());
    ++compared;
  }
  std::printf("%s bf16: worst relative logit error %.3g, %d first tokens compared\n",
              GetParam().c_str(), worst, compared);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Bf16FixtureTest, ::testing::ValuesIn(AllModelFixtures()),
                         [](const auto& info) { return info.param; });

struct QuantizedCase {
  std::string fixture;
  std::string quantization;
};

void PrintTo(const QuantizedCase& c, std::ostream* os) {
  *os << c.fixture << " " << c.quantization;
}

// Families whose every matrix row is a whole number of 32-value blocks.
std::vector<QuantizedCase> QuantizableCases() {
  std::vector<QuantizedCase> cases;
  for (const char* fixture : {"llama_gqa", "llama_biases_tied", "qwen2_bias", "mistral_window",
                              "phi3_partial", "gpt_neox", "gptj", "gpt2", "falcon_rope_mqa",
                              "falcon_new_arch", "xglm", "llama_yarn", "llama_sharded"}) {
    for (const char* q : {"int8", "int4", "q4_1"}) cases.push_back({fixture, q});
  }
  return cases;
}

// The same checkpoint with every matrix widened to f32 (the values the quantized formats
// hold, in f32 arithmetic).
ModelCheckpoint Widened(ModelCheckpoint checkpoint) {
  auto widen = [](Weight& w) {
    if (!w.empty()) w = Weight::FromF32(w.ToF32(), w.rows(), w.cols());
  };
  DecoderWeights& d = checkpoint.weights;
  for (Weight* w : {&d.embed_tokens, &d.project_in, &d.project_out, &d.lm_head}) widen(*w);
  for (DecoderLayerWeights& layer : d.layers) {
    for (Weight* w : {&layer.qkv, &layer.o_proj, &layer.up, &layer.down}) widen(*w);
  }
  return checkpoint;
}

class QuantizedFixtureTest : public ::testing::TestWithParam<QuantizedCase> {};

// The block kernels (8-bit activation blocks, integer dot products) against f32 arithmetic on
// exactly the values the quantized weights hold: what remains is the activations' 8-bit
// rounding, so the logits agree closely whatever the format.
TEST_P(QuantizedFixtureTest, BlockKernelsFollowF32ArithmeticOnTheSameWeights) {
  const QuantizedCase& c = GetParam();
  WeightFormatOptions formats;
  formats.quantization = c.quantization;
  auto checkpoint = LoadCheckpoint(FixtureDir(c.fixture), formats);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ExecutorOptions options;
  options.num_blocks = 256;
  options.block_size = 4;
  options.kv_cache_dtype = "f32";
  auto reference = CreateExecutor(Widened(*checkpoint), options);
  auto quantized = CreateExecutor(*std::move(checkpoint), options);
  ASSERT_TRUE(reference.ok() && quantized.ok());
  const int64_t vocab = (*reference)->config().vocab_size;
  double worst = 1.0;
  for (const GoldenCase& golden : LoadGolden(c.fixture)) {
    // Prefill (f32 GEMM on widened tiles) and decode (block kernels) rows both.
    GreedyOptions options;
    options.max_tokens = 4;
    options.stop_at_eos = false;
    options.keep_prompt_logits = true;
    auto expected = GenerateGreedy(**reference, golden.prompt, options);
    auto got = GenerateGreedy(**quantized, golden.prompt, options);
    ASSERT_TRUE(expected.ok() && got.ok());
    for (size_t pos = 0; pos < golden.prompt.size(); ++pos) {
      worst = std::min(worst, Cosine(got->prompt_logits.data() + pos * vocab,
                                     expected->prompt_logits.data() + pos * vocab, vocab));
    }
    if (got->tokens == expected->tokens) {
      worst = std::min(worst, Cosine(got->last_logits.data(), expected->last_logits.data(), vocab));
    }
  }
  EXPECT_GE(worst, 0.999);
  std::printf("%s %s: worst cosine against f32 on the same weights %.6f\n", c.fixture.c_str(),
              c.quantization.c_str(), worst);
}

// Against the f32 checkpoint itself: int8's whole error. (4-bit weights move these tiny random
// models' logits far more than a trained model's: their large random weights and sharp
// attention amplify it; the README's perplexity table measures 4-bit on real text.)
TEST(QuantizedFixtures, Int8FollowsTheF32Checkpoint) {
  for (const QuantizedCase& c : QuantizableCases()) {
    if (c.quantization != "int8") continue;
    auto reference = Load(c.fixture, "f32", "none", "f32");
    auto quantized = Load(c.fixture, "auto", "int8", "auto");
    ASSERT_TRUE(reference.ok() && quantized.ok());
    const int64_t vocab = (*reference)->config().vocab_size;
    for (const GoldenCase& golden : LoadGolden(c.fixture)) {
      const std::vector<float> expected = PromptLogits(**reference, golden.prompt);
      const std::vector<float> got = PromptLogits(**quantized, golden.prompt);
      for (size_t pos = 0; pos < golden.prompt.size(); ++pos) {
        EXPECT_GE(Cosine(got.data() + pos * vocab, expected.data() + pos * vocab, vocab), 0.997)
            << c.fixture << " position " << pos;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizedFixtureTest, ::testing::ValuesIn(QuantizableCases()),
                         [](const auto& info) {
                           return info.param.fixture + "_" + info.param.quantization;
                         });

TEST(WeightFormatOptions, UnusableCombinationsAreLoadErrorsNamingTheFlag) {
  // bloom_alibi6's hidden size is 24: no whole 32-value blocks.
  auto rows = Load("bloom_alibi6", "auto", "int8", "auto");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("--quantization"));
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("blocks of 32"));
  auto dtype = Load("llama_gqa", "f64", "none", "auto");
  EXPECT_THAT(std::string(dtype.status().message()), HasSubstr("--weight-dtype"));
  auto quantization = Load("llama_gqa", "auto", "int3", "auto");
  EXPECT_THAT(std::string(quantization.status().message()), HasSubstr("--quantization"));
  auto kv = Load("llama_gqa", "auto", "none", "int8");
  EXPECT_THAT(std::string(kv.status().message()), HasSubstr("--kv-cache-dtype"));
}

TEST(WeightFormatOptions, KvCacheCapacityFollowsItsDtype) {
  ExecutorOptions options;
  options.kv_cache_bytes = int64_t(1) << 20;
  options.block_size = 4;
  options.kv_cache_dtype = "f32";
  auto f32 = LoadExecutor(FixtureDir("llama_gqa"), options);
  options.kv_cache_dtype = "bf16";
  auto bf16 = LoadExecutor(FixtureDir("llama_gqa"), options);
  ASSERT_TRUE(f32.ok() && bf16.ok());
  EXPECT_EQ((*bf16)->num_blocks(), 2 * (*f32)->num_blocks());
}

}  // namespace
}  // namespace ropewire::model
