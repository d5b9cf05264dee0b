// Positional-encoding tables against values dumped from transformers (tools/posenc_tables.py):
// every RoPE scaling type's inverse frequencies and attention factor resolved from a config.json,
// length-dependent types at several sequence lengths, ALiBi slopes for 1..64 heads, T5 buckets
// and XGLM sinusoids. Also config resolution: 4.x and 5.x keys, aliases, nested per-layer-type
// dicts, max_model_len and load errors.
#include <cmath>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/position_encoding.h"
#include "kernels/rope_table.h"
#include "model/config.h"
#include "model/config_json.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {
namespace {

using ::testing::HasSubstr;

const nlohmann::json& Tables() {
  static const nlohmann::json* tables = [] {
    std::ifstream in(std::string(ROPEWIRE_SOURCE_DIR) +
                     "/tests/fixtures/posenc/posenc_tables.json");
    return new nlohmann::json(nlohmann::json::parse(in));
  }();
  return *tables;
}

// Largest relative difference between two tables; both are fp32 computations of the same
// formulas, so only last-ulp differences of pow/exp are allowed.
double MaxRelativeDiff(const std::vector<float>& actual, const std::vector<float>& expected) {
  EXPECT_EQ(actual.size(), expected.size());
  double worst = 0.0;
  for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    const double denom = std::max(std::abs(double(expected[i])), 1e-30);
    worst = std::max(worst, std::abs(double(actual[i]) - expected[i]) / denom);
  }
  return worst;
}

ModelConfig Parse(const nlohmann::json& config) {
  auto parsed = ParseModelConfig(config.dump(), "test config.json");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : ModelConfig();
}

TEST(RopeTables, EveryScalingTypeMatchesTransformers) {
  for (const auto& [name, entry] : Tables().at("rope").items()) {
    SCOPED_TRACE(name);
    const ModelConfig config = Parse(entry.at("config"));
    const kernels::RopeSpec& spec = config.position.rope;
    EXPECT_LE(MaxRelativeDiff(spec.inv_freq, entry.at("inv_freq").get<std::vector<float>>()), 2e-7);
    EXPECT_NEAR(spec.attention_scaling, entry.at("attention_factor").get<double>(), 1e-6);
    for (const auto& at : entry.at("by_length")) {
      const int64_t length = at.at("seq_len").get<int64_t>();
      SCOPED_TRACE("sequence length " + std::to_string(length));
      // Dynamic NTK's rescaled base goes through one more fp32 pow: a few ulp.
      EXPECT_LE(MaxRelativeDiff(kernels::InverseFrequenciesForLength(spec, length),
                                at.at("inv_freq").get<std::vector<float>>()),
                6e-7);
      EXPECT_NEAR(spec.attention_scaling, at.at("attention_factor").get<double>(), 1e-6);
    }
  }
}

TEST(RopeTables, ReferenceNumbersOfTheSpec) {
  // posenc.md §12: values computed in double from the formulas.
  const auto& rope = Tables().at("rope");
  const ModelConfig qwen = Parse(rope.at("yarn_qwen").at("config"));
  EXPECT_NEAR(qwen.position.rope.attention_scaling, 1.1386294, 1e-6);
  EXPECT_FLOAT_EQ(qwen.position.rope.inv_freq[0], 1.0f);
  const ModelConfig llama3 = Parse(rope.at("llama3_8b").at("config"));
  EXPECT_NEAR(llama3.position.rope.inv_freq[1], 0.81461723, 1e-7);
  const ModelConfig deepseek = Parse(rope.at("yarn_deepseek_mscale").at("config"));
  EXPECT_FLOAT_EQ(deepseek.position.rope.attention_scaling, 1.0f);
  const ModelConfig longrope = Parse(rope.at("longrope_phi3_128k").at("config"));
  EXPECT_NEAR(longrope.position.rope.attention_scaling, 1.1902381, 1e-6);
}

TEST(AlibiSlopes, BloomFormForOneToSixtyFourHeads) {
  for (int heads = 1; heads <= 64; ++heads) {
    const auto expected =
        Tables().at("alibi_slopes").at(std::to_string(heads)).get<std::vector<float>>();
    EXPECT_LE(MaxRelativeDiff(kernels::AlibiSlopes(heads), expected), 2e-7) << heads << " heads";
  }
  EXPECT_THAT(kernels::AlibiSlopes(6),
              ::testing::ElementsAre(0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f));
}

TEST(AlibiSlopes, MptFormForOneToSixtyFourHeads) {
  for (int heads = 1; heads <= 64; ++heads) {
    const auto expected =
        Tables().at("mpt_alibi_slopes").at(std::to_string(heads)).get<std::vector<float>>();
    EXPECT_LE(MaxRelativeDiff(kernels::MptAlibiSlopes(heads, 8.0), expected), 2e-7)
        << heads << " heads";
  }
}

TEST(T5Buckets, MatchTransformersBucketFunction) {
  for (const auto& table : Tables().at("t5_buckets")) {
    const bool bidirectional = table.at("bidirectional").get<bool>();
    const int buckets = table.at("num_buckets").get<int>();
    const int distance = table.at("max_distance").get<int>();
    const auto relative = table.at("relative_position").get<std::vector<int64_t>>();
    const auto expected = table.at("bucket").get<std::vector<int>>();
    for (size_t i = 0; i < relative.size(); ++i) {
      ASSERT_EQ(kernels::T5RelativePositionBucket(relative[i], bidirectional, buckets, distance),
                expected[i])
          << "relative " << relative[i] << (bidirectional ? " bidirectional" : " causal")
          << " buckets " << buckets << " max distance " << distance;
    }
  }
}

TEST(Sinusoids, XglmTableMatchesTransformers) {
  for (const auto& table : Tables().at("xglm_sinusoids")) {
    const int dim = table.at("dim").get<int>();
    const auto rows = table.at("rows").get<std::vector<std::vector<float>>>();
    const std::vector<float> actual = kernels::SinusoidalPositionTable(
        static_cast<int64_t>(rows.size()), dim, table.at("padding_idx").get<int>());
    for (size_t r = 0; r < rows.size(); ++r) {
      for (int c = 0; c < dim; ++c) {
        EXPECT_NEAR(actual[r * dim + c], rows[r][c], 2e-6) << "dim " << dim << " row " << r;
      }
    }
  }
}

nlohmann::json LlamaJson(nlohmann::json extra) {
  nlohmann::json j = {
      {"model_type", "llama"},          {"vocab_size", 32},       {"hidden_size", 64},
      {"intermediate_size", 8},         {"num_hidden_layers", 2}, {"num_attention_heads", 4},
      {"max_position_embeddings", 4096}};
  j.update(extra);
  return j;
}

absl::Status ParseError(const nlohmann::json& j) {
  return ParseModelConfig(j.dump(), "test config.json").status();
}

TEST(RopeConfig, TransformersFourAndFiveKeysResolveTheSame) {
  const ModelConfig v5 = Parse(LlamaJson({{"rope_parameters",
                                           {{"rope_type", "yarn"},
                                            {"factor", 4.0},
                                            {"rope_theta", 50000.0},
                                            {"original_max_position_embeddings", 1024}}}}));
  const ModelConfig v4 = Parse(
      LlamaJson({{"rope_theta", 50000},
                 {"rope_scaling",
                  {{"type", "yarn"}, {"factor", 4}, {"original_max_position_embeddings", 1024}}}}));
  EXPECT_EQ(v5.position.rope.inv_freq, v4.position.rope.inv_freq);
  EXPECT_EQ(v5.position.rope.attention_scaling, v4.position.rope.attention_scaling);
  EXPECT_EQ(v5.max_model_len, 4096);  // max(max_position_embeddings, original × factor)
}

TEST(RopeConfig, MaxModelLenFollowsTheScaling) {
  EXPECT_EQ(Parse(LlamaJson(nlohmann::json::object())).max_model_len, 4096);
  EXPECT_EQ(
      Parse(LlamaJson({{"rope_scaling", {{"rope_type", "linear"}, {"factor", 2}}}})).max_model_len,
      8192);
  EXPECT_EQ(
      Parse(LlamaJson({{"rope_scaling", {{"rope_type", "dynamic"}, {"factor", 4}}}})).max_model_len,
      16384);
  EXPECT_EQ(Parse(LlamaJson({{"rope_scaling",
                              {{"rope_type", "yarn"},
                               {"factor", 8},
                               {"original_max_position_embeddings", 2048}}}}))
                .max_model_len,
            16384);
}

TEST(RopeConfig, GptNeoxAliasesAndPartialRotary) {
  nlohmann::json j = {{"model_type", "gpt_neox"}, {"vocab_size", 32},
                      {"hidden_size", 64},        {"intermediate_size", 8},
                      {"num_hidden_layers", 1},   {"num_attention_heads", 4},
                      {"rotary_emb_base", 20000}};
  const ModelConfig pct_default = Parse(j);
  EXPECT_EQ(pct_default.position.rope.rotary_dim, 4);  // int(16 × 0.25)
  j["rotary_pct"] = 0.5;
  const ModelConfig half = Parse(j);
  EXPECT_EQ(half.position.rope.rotary_dim, 8);
  EXPECT_EQ(half.position.rope.inv_freq, kernels::DefaultInverseFrequencies(20000, 8));
}

TEST(RopeConfig, NestedPerLayerTypeDicts) {
  const nlohmann::json types = {"sliding_attention", "full_attention"};
  const ModelConfig same =
      Parse(LlamaJson({{"layer_types", types},
                       {"rope_parameters",
                        {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}},
                         {"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}}}}));
  EXPECT_TRUE(same.position_by_layer.empty());
  const ModelConfig mixed = Parse(LlamaJson(
      {{"layer_types", types},
       {"rope_parameters",
        {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}},
         {"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}}}}}));
  ASSERT_EQ(mixed.position_by_layer.size(), 2u);
  EXPECT_EQ(mixed.position_by_layer[0].rope_type, "default");
  EXPECT_EQ(mixed.position_by_layer[1].rope_type, "linear");
  EXPECT_EQ(mixed.position_by_layer[1].rope.inv_freq[0], 1.0f / 8.0f);
}

TEST(RopeConfig, Phi3LegacyNamesMeanLongRope) {
  nlohmann::json j = LlamaJson({{"model_type", "phi3"},
                                {"original_max_position_embeddings", 1024},
                                {"rope_scaling",
                                 {{"type", "su"},
                                  {"short_factor", std::vector<double>(8, 1.0)},
                                  {"long_factor", std::vector<double>(8, 4.0)}}}});
  const ModelConfig c = Parse(j);
  EXPECT_EQ(c.position.rope_type, "longrope");
  EXPECT_EQ(c.position.rope.long_threshold, 1024);
  EXPECT_NEAR(c.position.rope.attention_scaling, std::sqrt(1 + std::log(4.0) / std::log(1024.0)),
              1e-6);
}

TEST(RopeConfig, UnhonourableParametersAreLoadErrors) {
  EXPECT_THAT(ParseError(LlamaJson({{"rope_scaling", {{"type", "ntk"}, {"factor", 2}}}})).message(),
              HasSubstr("rope_type \"ntk\" is not supported"));
  EXPECT_THAT(ParseError(LlamaJson({{"rope_scaling", {{"type", "dynamic"}}}})).message(),
              HasSubstr("\"factor\" is missing"));
  EXPECT_THAT(
      ParseError(LlamaJson({{"rope_scaling", {{"type", "llama3"}, {"factor", 8}}}})).message(),
      HasSubstr("low_freq_factor"));
  EXPECT_THAT(ParseError(LlamaJson({{"rope_scaling",
                                     {{"type", "longrope"},
                                      {"short_factor", {1.0, 1.0}},
                                      {"long_factor", {1.0, 1.0}}}}}))
                  .message(),
              HasSubstr("rotary_dim / 2 = 8"));
  EXPECT_THAT(ParseError(LlamaJson({{"partial_rotary_factor", 0.5}})).message(),
              HasSubstr("rotates the whole head"));
  nlohmann::json neox = {{"model_type", "gpt_neox"}, {"vocab_size", 32},
                         {"hidden_size", 64},        {"intermediate_size", 8},
                         {"num_hidden_layers", 1},   {"num_attention_heads", 4},
                         {"rotary_pct", 0.01}};
  EXPECT_THAT(ParseError(neox).message(), HasSubstr("unusable rotary dimension"));
  nlohmann::json gptj = {
      {"model_type", "gptj"}, {"vocab_size", 32},
      {"n_embd", 64},         {"n_layer", 1},
      {"n_head", 4},          {"rope_scaling", {{"type", "linear"}, {"factor", 2}}}};
  EXPECT_THAT(ParseError(gptj).message(), HasSubstr("no RoPE scaling"));
}

TEST(FamilyConfig, UnsupportedVariantsAreLoadErrors) {
  const nlohmann::json mpt = {{"model_type", "mpt"}, {"vocab_size", 32},
                              {"d_model", 16},       {"n_layers", 1},
                              {"n_heads", 2},        {"attn_config", {{"alibi", false}}}};
  EXPECT_THAT(ParseError(mpt).message(), HasSubstr("\"alibi\" false is not supported"));
  const nlohmann::json phi = {{"model_type", "phi"},      {"vocab_size", 32},
                              {"hidden_size", 16},        {"num_hidden_layers", 1},
                              {"num_attention_heads", 2}, {"intermediate_size", 8},
                              {"qk_layernorm", true}};
  EXPECT_THAT(ParseError(phi).message(), HasSubstr("qk_layernorm"));
}

TEST(FamilyConfig, PostNormLayouts) {
  nlohmann::json opt = {{"model_type", "opt"},    {"vocab_size", 32},         {"hidden_size", 16},
                        {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"ffn_dim", 8}};
  EXPECT_EQ(Parse(opt).residual, ResidualLayout::kSequential);
  EXPECT_TRUE(Parse(opt).final_norm);
  opt["do_layer_norm_before"] = false;  // opt-350m: norms after each residual add, none at the end
  EXPECT_EQ(Parse(opt).residual, ResidualLayout::kPostNorm);
  EXPECT_FALSE(Parse(opt).final_norm);
  nlohmann::json bloom = {{"model_type", "bloom"},
                          {"vocab_size", 32},
                          {"hidden_size", 16},
                          {"n_layer", 1},
                          {"n_head", 2}};
  EXPECT_EQ(Parse(bloom).residual, ResidualLayout::kSequential);
  bloom["apply_residual_connection_post_layernorm"] = true;
  EXPECT_EQ(Parse(bloom).residual, ResidualLayout::kNormedResidual);
}

TEST(FamilyConfig, FalconLayouts) {
  nlohmann::json falcon = {{"model_type", "falcon"},   {"vocab_size", 32},
                           {"hidden_size", 64},        {"num_hidden_layers", 1},
                           {"num_attention_heads", 8}, {"num_kv_heads", 2}};
  EXPECT_EQ(Parse(falcon).num_kv_heads, 1);  // multi_query (the default) wins over num_kv_heads
  falcon["new_decoder_architecture"] = true;
  const ModelConfig gqa = Parse(falcon);
  EXPECT_EQ(gqa.num_kv_heads, 2);
  EXPECT_EQ(gqa.residual, ResidualLayout::kParallelTwoNorms);
  falcon["new_decoder_architecture"] = false;
  falcon["multi_query"] = false;
  falcon["parallel_attn"] = false;
  falcon["alibi"] = true;
  const ModelConfig rw = Parse(falcon);
  EXPECT_EQ(rw.num_kv_heads, 8);
  EXPECT_EQ(rw.residual, ResidualLayout::kSequential);
  EXPECT_EQ(rw.position.kind, kernels::PositionKind::kAlibi);
  EXPECT_TRUE(rw.position.alibi.bf16_key_position_form);
  EXPECT_FLOAT_EQ(rw.position.alibi.bias_scale, 1.0f / std::sqrt(8.0f));
}

TEST(PositionConfig, AbsoluteAndAlibiFamilies) {
  const ModelConfig gpt2 = Parse({{"model_type", "gpt2"},
                                  {"vocab_size", 32},
                                  {"n_embd", 16},
                                  {"n_layer", 1},
                                  {"n_head", 2},
                                  {"n_positions", 77}});
  EXPECT_EQ(gpt2.position.kind, kernels::PositionKind::kLearned);
  EXPECT_EQ(gpt2.max_model_len, 77);
  const ModelConfig opt = Parse({{"model_type", "opt"},
                                 {"vocab_size", 32},
                                 {"hidden_size", 16},
                                 {"num_hidden_layers", 1},
                                 {"num_attention_heads", 2},
                                 {"ffn_dim", 8},
                                 {"max_position_embeddings", 50}});
  EXPECT_EQ(opt.position.absolute.offset, 2);
  EXPECT_EQ(opt.position.absolute.table_rows, 52);
  EXPECT_EQ(opt.max_model_len, 50);
  const ModelConfig bloom = Parse({{"model_type", "bloom"},
                                   {"vocab_size", 32},
                                   {"hidden_size", 24},
                                   {"n_layer", 1},
                                   {"n_head", 12}});
  EXPECT_EQ(bloom.position.kind, kernels::PositionKind::kAlibi);
  EXPECT_EQ(bloom.position.alibi.slopes, kernels::AlibiSlopes(12));
  EXPECT_TRUE(bloom.position.IsRelative());
  EXPECT_FALSE(opt.position.IsRelative());
}

}  // namespace
}  // namespace ropewire::model
