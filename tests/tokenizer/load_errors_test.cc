// Malformed or unsupported tokenizer.json files fail to load with an error that names the
// problem and where it is; bad input to Encode/Decode is an error, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/tokenizer/fixtures.h"

namespace ropewire::tokenizer::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A complete, valid tokenizer.json to break one piece at a time.
Json MinimalTokenizer() {
  return Json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 4, "content": "<s>", "single_word": false, "lstrip": false,
                      "rstrip": false, "normalized": false, "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                      "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null,
              "continuing_subword_prefix": null, "end_of_word_suffix": null,
              "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3},
              "merges": [["a", "b"]]}
  })");
}

absl::Status LoadError(const Json& json) {
  auto tokenizer = Tokenizer::FromJson(json, "test.json");
  return tokenizer.ok() ? absl::OkStatus() : tokenizer.status();
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(TokenizerLoadErrors, TheMinimalTokenizerLoads) {
  auto tokenizer = Tokenizer::FromJson(MinimalTokenizer());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(*(*tokenizer)->Encode("abc<s>"), (std::vector<int32_t>{2, 3, 4}));
}

TEST(TokenizerLoadErrors, BadJson) {
  auto tokenizer = Tokenizer::FromJsonText("{\"model\": {\"type\": \"BPE\",", "broken.json");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(tokenizer.status()),
              AllOf(HasSubstr("broken.json"), HasSubstr("not valid JSON")));
  EXPECT_FALSE(Tokenizer::FromJsonText("[1, 2]").ok());
  EXPECT_FALSE(Tokenizer::FromJsonText("").ok());
}

TEST(TokenizerLoadErrors, MissingFile) {
  auto tokenizer = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(tokenizer.status()), HasSubstr("/nonexistent/tokenizer.json"));
}

TEST(TokenizerLoadErrors, MissingModel) {
  Json json = MinimalTokenizer();
  json.erase("model");
  EXPECT_THAT(Message(LoadError(json)), AllOf(HasSubstr("test.json"), HasSubstr("model")));
}

TEST(TokenizerLoadErrors, UnknownModelType) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel", "Mystery"}) {
    Json json = MinimalTokenizer();
    json["model"]["type"] = type;
    const absl::Status status = LoadError(json);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << type;
    EXPECT_THAT(Message(status), AllOf(HasSubstr("model.type"), HasSubstr(type)));
  }
}

TEST(TokenizerLoadErrors, MissingVocab) {
  Json json = MinimalTokenizer();
  json["model"].erase("vocab");
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.vocab: missing"));
  json["model"]["vocab"] = Json::array({"a", "b"});
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.vocab"));
  json["model"]["vocab"] = {{"a", -3}};
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.vocab.a"));
}

TEST(TokenizerLoadErrors, MergesNamingUnknownTokens) {
  Json json = MinimalTokenizer();
  json["model"]["merges"] = Json::array({Json::array({"a", "b"}), Json::array({"b", "zz"})});
  EXPECT_THAT(Message(LoadError(json)), AllOf(HasSubstr("model.merges[1]"), HasSubstr("'zz'"),
                                              HasSubstr("not in the vocab")));
  // The merged token itself must exist too.
  json["model"]["merges"] = Json::array({"b c"});
  EXPECT_THAT(Message(LoadError(json)), AllOf(HasSubstr("model.merges[0]"), HasSubstr("'bc'")));
}

TEST(TokenizerLoadErrors, MalformedMerges) {
  Json json = MinimalTokenizer();
  json["model"]["merges"] = Json::array({"a b c"});
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.merges[0]"));
  json["model"]["merges"] = Json::array({Json::array({"a"})});
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.merges[0]"));
  json["model"]["merges"] = "a b";
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.merges"));
}

TEST(TokenizerLoadErrors, UnsupportedPreTokenizerIsNamed) {
  Json json = MinimalTokenizer();
  json["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", Json::array({json["pre_tokenizer"], {{"type", "UnicodeScripts"}}})}};
  const absl::Status status = LoadError(json);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(status), AllOf(HasSubstr("pre_tokenizer.pretokenizers[1]"),
                                     HasSubstr("pre-tokenizer"), HasSubstr("'UnicodeScripts'")));
}

TEST(TokenizerLoadErrors, UnsupportedComponentsAreNamed) {
  struct Case {
    const char* section;
    Json value;
    const char* named;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}}, "Precompiled"},
      {"normalizer", {{"type", "BertNormalizer"}}, "BertNormalizer"},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}}, "WordPiece"},
      {"decoder", {{"type", "CTC"}}, "CTC"},
      {"post_processor", {{"type", "Mystery"}}, "Mystery"},
      {"pre_tokenizer", {{"type", "FixedLength"}, {"length", 5}}, "FixedLength"},
  };
  for (const Case& item : cases) {
    Json json = MinimalTokenizer();
    json[item.section] = item.value;
    const absl::Status status = LoadError(json);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << item.named;
    EXPECT_THAT(Message(status), AllOf(HasSubstr(item.section), HasSubstr(item.named)));
  }
}

TEST(TokenizerLoadErrors, BadComponentSettings) {
  struct Case {
    const char* key;
    Json value;
    const char* named;
  };
  const std::vector<Case> cases = {
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
       "pre_tokenizer.pattern"},
      {"pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}},
       "Sideways"},
      {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "ab"}}, "replacement"},
      {"pre_tokenizer", {{"type", "Metaspace"}, {"prepend_scheme", "sometimes"}}, "sometimes"},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"Glob", "*"}}}, {"content", ""}}, "Glob"},
      {"decoder", {{"type", "Strip"}, {"content", "xy"}, {"start", 1}, {"stop", 0}}, "content"},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         Json::array({{{"SpecialToken", {{"id", "<bos>"}}}}, {{"Sequence", {{"id", "A"}}}}})},
        {"special_tokens", Json::object()}},
       "<bos>"},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", Json::array({{{"Sequence", {{"id", "A"}}}}, {{"Sequence", {{"id", "A"}}}}})}},
       "exactly once"},
  };
  for (const Case& item : cases) {
    Json json = MinimalTokenizer();
    json[item.key] = item.value;
    EXPECT_THAT(Message(LoadError(json)), HasSubstr(item.named)) << item.value.dump();
  }
}

TEST(TokenizerLoadErrors, ModelSettings) {
  Json json = MinimalTokenizer();
  json["model"]["unk_token"] = "<unk>";
  EXPECT_THAT(Message(LoadError(json)), AllOf(HasSubstr("model.unk_token"), HasSubstr("<unk>")));
  json = MinimalTokenizer();
  json["model"]["dropout"] = 0.1;
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("model.dropout"));
  json = MinimalTokenizer();
  json["added_tokens"][0]["special"] = "yes";
  EXPECT_THAT(Message(LoadError(json)), HasSubstr("added_tokens[0].special"));
}

TEST(TokenizerInputErrors, EncodeRejectsInvalidUtf8) {
  auto tokenizer = Tokenizer::FromJson(MinimalTokenizer());
  ASSERT_TRUE(tokenizer.ok());
  for (const char* bad : {"ab\xFF", "\xC3", "a\xED\xA0\x80", "\xC0\xAF"}) {
    auto ids = (*tokenizer)->Encode(bad);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(ids.status()), HasSubstr("UTF-8"));
  }
}

TEST(TokenizerInputErrors, DecodeRejectsUnknownIds) {
  auto tokenizer = Tokenizer::FromJson(MinimalTokenizer());
  ASSERT_TRUE(tokenizer.ok());
  for (int32_t bad : {-1, 5, 1000000}) {
    auto text = (*tokenizer)->Decode(std::vector<int32_t>{0, bad});
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(text.status()), HasSubstr(std::to_string(bad)));
  }
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
