// Special-token facts of a model directory: BOS, EOS (one or several), add_bos_token, chat
// template, from the files transformers writes (fixtures) and hand-made variations of them.
#include "tokenizer/tokenizer_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/tokenizer/fixtures.h"

namespace ropewire::tokenizer::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TokenizerConfig, Llama3StyleDirectory) {
  auto loaded = LoadModelTokenizer(FixturesDir() + "/bytelevel_llama3");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tokenizer = *loaded->tokenizer;
  const TokenizerConfig& config = loaded->config;
  EXPECT_EQ(config.bos_token_id, tokenizer.TokenToId("<|begin_of_text|>"));
  // generation_config.json lists two EOS ids; both end generation.
  EXPECT_THAT(config.eos_token_ids, ElementsAre(*tokenizer.TokenToId("<|end_of_text|>"),
                                                *tokenizer.TokenToId("<|eot_id|>")));
  EXPECT_TRUE(config.add_bos_token);  // the post-processor adds it
  EXPECT_FALSE(config.add_eos_token);
  ASSERT_TRUE(config.chat_template.has_value());  // from chat_template.jinja
  EXPECT_THAT(*config.chat_template, HasSubstr("<|eot_id|>"));
}

TEST(TokenizerConfig, SentencePieceStyleDirectory) {
  auto loaded = LoadModelTokenizer(FixturesDir() + "/sentencepiece_llama2");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tokenizer = *loaded->tokenizer;
  // No generation_config.json: config.json supplies the ids.
  EXPECT_EQ(loaded->config.bos_token_id, tokenizer.TokenToId("<s>"));
  EXPECT_THAT(loaded->config.eos_token_ids, ElementsAre(*tokenizer.TokenToId("</s>")));
  EXPECT_TRUE(loaded->config.add_bos_token);
  EXPECT_FALSE(loaded->config.chat_template.has_value());
}

TEST(TokenizerConfig, Gpt2StyleDirectoryAddsNoBos) {
  auto loaded = LoadModelTokenizer(FixturesDir() + "/bytelevel_gpt2");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->config.add_bos_token);
  EXPECT_THAT(loaded->config.eos_token_ids,
              ElementsAre(*loaded->tokenizer->TokenToId("<|endoftext|>")));
}

// A scratch model directory holding the SentencePiece fixture's tokenizer.json.
class TokenizerConfigScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ropewire_tokenizer_config_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::copy_file(FixturesDir() + "/sentencepiece_llama2/tokenizer.json", dir_ / "tokenizer.json",
                  fs::copy_options::overwrite_existing);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  fs::path dir_;
};

TEST_F(TokenizerConfigScratchDir, OnlyATokenizerJson) {
  auto loaded = LoadModelTokenizer(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->config.bos_token_id.has_value());
  EXPECT_TRUE(loaded->config.eos_token_ids.empty());
  EXPECT_FALSE(loaded->config.add_bos_token);  // nothing names a BOS
}

TEST_F(TokenizerConfigScratchDir, TokenizerConfigFlagsAndTokenObjects) {
  Write("tokenizer_config.json", R"({
    "add_bos_token": false, "add_eos_token": true,
    "bos_token": {"content": "<s>", "lstrip": false, "normalized": false},
    "eos_token": "</s>", "pad_token": null,
    "chat_template": [{"name": "tool_use", "template": "TOOLS"},
                      {"name": "default", "template": "DEFAULT"}]})");
  Write("generation_config.json", R"({"eos_token_id": 1500})");
  auto loaded = LoadModelTokenizer(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const TokenizerConfig& config = loaded->config;
  EXPECT_FALSE(config.add_bos_token);  // explicit setting wins over the post-processor
  EXPECT_TRUE(config.add_eos_token);
  EXPECT_EQ(config.bos_token_id, loaded->tokenizer->TokenToId("<s>"));
  // generation_config's id first, then the tokenizer's eos_token.
  EXPECT_THAT(config.eos_token_ids, ElementsAre(1500, *loaded->tokenizer->TokenToId("</s>")));
  EXPECT_EQ(config.chat_template, "DEFAULT");
}

TEST_F(TokenizerConfigScratchDir, Errors) {
  Write("config.json", R"({"eos_token_id": "two"})");
  auto loaded = LoadModelTokenizer(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()),
              ::testing::AllOf(HasSubstr("config.json"), HasSubstr("eos_token_id")));

  Write("config.json", R"({"eos_token_id": [2, 99999]})");
  loaded = LoadModelTokenizer(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("99999"));

  Write("config.json", "{}");
  Write("tokenizer_config.json", R"({"eos_token": "<|not a token|>"})");
  loaded = LoadModelTokenizer(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("<|not a token|>"));

  Write("tokenizer_config.json", "{ not json");
  EXPECT_FALSE(LoadModelTokenizer(dir_).ok());
  fs::remove(dir_ / "tokenizer.json");
  EXPECT_EQ(LoadModelTokenizer(dir_).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
