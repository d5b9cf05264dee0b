// Perplexity of the demo model on the KJV chapters it never saw in training, against the figure
// transformers computes with the same windows (tools/perplexity_reference.py), and the quality
// each weight format keeps relative to it.
#include "model/perplexity.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "model/executor.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::model {
namespace {

using ropewire::testing::SourceDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class DemoPerplexity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new nlohmann::json(nlohmann::json::parse(
        ReadFile(SourceDir() + "/tests/fixtures/perplexity/demo_kjv_holdout.json")));
    auto tokenizer = tokenizer::LoadModelTokenizer(SourceDir() + "/models/demo");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    auto ids = tokenizer->tokenizer->Encode(
        ReadFile(SourceDir() + "/tests/fixtures/text/kjv_holdout.txt"), false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    tokens_ = new std::vector<int32_t>(std::move(*ids));
  }

  PerplexityResult Measure(const std::string& weight_dtype, const std::string& quantization,
                           const std::string& kv_cache_dtype) {
    const int context = (*reference_)["context"];
    ExecutorOptions options;
    options.weight_dtype = weight_dtype;
    options.quantization = quantization;
    options.kv_cache_dtype = kv_cache_dtype;
    options.max_num_batched_tokens = context;
    options.num_blocks = context / options.block_size;
    auto executor = LoadExecutor(SourceDir() + "/models/demo", options);
    EXPECT_TRUE(executor.ok()) << executor.status();
    if (!executor.ok()) return {};
    PerplexityOptions perplexity;
    perplexity.context = context;
    perplexity.bos_token_id = (*executor)->config().bos_token_ids.front();
    auto result = ComputePerplexity(**executor, *tokens_, perplexity);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : PerplexityResult{};
  }

  static nlohmann::json* reference_;
  static std::vector<int32_t>* tokens_;
};

nlohmann::json* DemoPerplexity::reference_ = nullptr;
std::vector<int32_t>* DemoPerplexity::tokens_ = nullptr;

TEST_F(DemoPerplexity, F32MatchesTransformers) {
  const PerplexityResult result = Measure("f32", "none", "f32");
  EXPECT_EQ(result.windows, (*reference_)["windows"].get<int>());
  EXPECT_EQ(result.scored_tokens, (*reference_)["scored_tokens"].get<int64_t>());
  const double expected = (*reference_)["perplexity"];
  EXPECT_NEAR(result.perplexity, expected, 1e-4 * expected);
}

// The quality goals relative to f32: bf16 +0.1%, int8 +1%, int4 +5%.
TEST_F(DemoPerplexity, EachFormatStaysCloseToF32) {
  const double f32 = (*reference_)["perplexity"];
  struct Case {
    const char* weight_dtype;
    const char* quantization;
    const char* kv;
    double max_increase;
  };
  for (const Case& c : {Case{"bf16", "none", "bf16", 0.001}, Case{"auto", "int8", "bf16", 0.01},
                        Case{"auto", "int4", "bf16", 0.05}, Case{"auto", "q4_1", "bf16", 0.05}}) {
    const PerplexityResult result = Measure(c.weight_dtype, c.quantization, c.kv);
    EXPECT_LT(result.perplexity, f32 * (1 + c.max_increase))
        << c.weight_dtype << " " << c.quantization << " kv " << c.kv;
    EXPECT_GT(result.perplexity, f32 * 0.95) << c.quantization;  // better by chance, not by much
  }
}

TEST(Perplexity, RefusesATextShorterThanOneWindowAndATinyContext) {
  ExecutorOptions options;
  options.num_blocks = 8;
  auto executor = LoadExecutor(SourceDir() + "/models/demo", options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  PerplexityOptions perplexity;
  perplexity.context = 64;
  auto short_text = ComputePerplexity(**executor, std::vector<int32_t>(63, 5), perplexity);
  EXPECT_EQ(short_text.status().code(), absl::StatusCode::kInvalidArgument);
  perplexity.context = 2;
  EXPECT_EQ(ComputePerplexity(**executor, std::vector<int32_t>(64, 5), perplexity).status().code(),
            absl::StatusCode::kInvalidArgument);
  perplexity.context = 1024;  // beyond the 8 blocks of 16
  EXPECT_EQ(
      ComputePerplexity(**executor, std::vector<int32_t>(2048, 5), perplexity).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(Perplexity, NegativeLogLikelihoodOfAUniformRowIsLogVocab) {
  const std::vector<float> logits(1000, 3.5f);
  EXPECT_NEAR(NegativeLogLikelihood(logits.data(), 1000, 17), std::log(1000.0), 1e-12);
}

}  // namespace
}  // namespace ropewire::model
