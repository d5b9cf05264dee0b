// Incremental detokenization: for every prefix of every corpus line's ids (and every reference
// slice), the streamed deltas are valid UTF-8 and concatenate exactly to the full decode.
#include "tokenizer/streaming.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/fixtures.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer::testing {
namespace {

struct Streamed {
  std::string before_finish;  // text emitted by Step calls
  std::string total;          // ... plus Finish
};

// Streams `ids`, checking each delta is valid UTF-8.
Streamed Stream(const Tokenizer& tokenizer, std::span<const int32_t> ids, bool skip_special) {
  DecodeStream stream(tokenizer, skip_special);
  Streamed out;
  for (int32_t id : ids) {
    auto delta = stream.Step(id);
    EXPECT_TRUE(delta.ok()) << delta.status();
    if (!delta.ok()) return out;
    EXPECT_TRUE(IsValidUtf8(*delta)) << Json(ids).dump() << " id " << id;
    out.before_finish += *delta;
  }
  const std::string rest = stream.Finish();
  EXPECT_TRUE(IsValidUtf8(rest));
  out.total = out.before_finish + rest;
  return out;
}

class TokenizerStreaming : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    reference_ = LoadReference(GetParam());
    tokenizer_ = LoadReferenceTokenizer(reference_);
  }
  // Every prefix of `ids` streams to the full decode of that prefix.
  void CheckEveryPrefix(const std::vector<int32_t>& ids, bool skip_special) {
    for (size_t length = 0; length <= ids.size(); ++length) {
      const std::span<const int32_t> prefix(ids.data(), length);
      auto full = tokenizer_->Decode(prefix, skip_special);
      ASSERT_TRUE(full.ok()) << full.status();
      EXPECT_EQ(Stream(*tokenizer_, prefix, skip_special).total, *full)
          << "prefix of " << length << " ids, skip_special_tokens=" << skip_special;
    }
  }
  Reference reference_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(TokenizerStreaming, EveryPrefixOfEveryLineStreamsToTheFullDecode) {
  for (const ReferenceCase& item : reference_.cases) {
    SCOPED_TRACE(Json(item.text).dump());
    for (bool skip_special : {false, true}) CheckEveryPrefix(item.ids, skip_special);
    // The whole line also matches the reference's decode.
    if (item.decoded) {
      EXPECT_EQ(Stream(*tokenizer_, item.ids, false).total, *item.decoded);
    }
    if (item.decoded_skip_special) {
      EXPECT_EQ(Stream(*tokenizer_, item.ids, true).total, *item.decoded_skip_special);
    }
  }
}

TEST_P(TokenizerStreaming, ArbitraryIdSequencesStreamToTheReferenceDecode) {
  for (const ReferenceSlice& slice : reference_.slices) {
    SCOPED_TRACE(Json(slice.ids).dump());
    for (bool skip_special : {false, true}) CheckEveryPrefix(slice.ids, skip_special);
    if (slice.decoded) {
      EXPECT_EQ(Stream(*tokenizer_, slice.ids, false).total, *slice.decoded);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerStreaming, ::testing::ValuesIn(ReferenceNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// Text is emitted as soon as it is final: with a byte-level decoder, at most one incomplete
// character (which would finish as one U+FFFD) is ever held back.
TEST(TokenizerStreamingPromptness, ByteLevelHoldsBackOnlyAnIncompleteCharacter) {
  const Reference reference = LoadReference("bytelevel_llama3");
  auto tokenizer = LoadReferenceTokenizer(reference);
  for (const ReferenceCase& item : reference.cases) {
    for (size_t length = 1; length <= item.ids.size(); ++length) {
      const std::span<const int32_t> prefix(item.ids.data(), length);
      const Streamed streamed = Stream(*tokenizer, prefix, false);
      const std::string held = streamed.total.substr(streamed.before_finish.size());
      EXPECT_TRUE(held.empty() || held == kReplacementChar) << Json(item.text).dump();
    }
  }
}

TEST(TokenizerStreamingPromptness, SentencePieceEmitsEachWordWithItsToken) {
  auto tokenizer = LoadBaseTokenizer("sentencepiece_llama2");
  auto ids = tokenizer->Encode("Hello world", /*add_special_tokens=*/false);
  ASSERT_TRUE(ids.ok());
  DecodeStream stream(*tokenizer, /*skip_special_tokens=*/false);
  std::string text;
  std::vector<std::string> deltas;
  for (int32_t id : *ids) {
    auto delta = stream.Step(id);
    ASSERT_TRUE(delta.ok());
    deltas.push_back(*delta);
    text += *delta;
  }
  // The leading "▁" of the first word is stripped (Strip decoder) yet the space before
  // "world" survives, and nothing is held back at the end.
  EXPECT_EQ(text, "Hello world");
  EXPECT_EQ(stream.Finish(), "");
  EXPECT_EQ(deltas.front().front(), 'H');
}

TEST(TokenizerStreamingPromptness, ByteFallbackRunIsReleasedByTheNextWord) {
  auto tokenizer = LoadBaseTokenizer("sentencepiece_llama2");
  const int32_t e4 = *tokenizer->TokenToId("<0xE4>");
  const int32_t b8 = *tokenizer->TokenToId("<0xB8>");
  const int32_t ad = *tokenizer->TokenToId("<0xAD>");
  const int32_t word = *tokenizer->TokenToId(
      "\xE2\x96\x81"
      "a");  // "▁a"
  DecodeStream stream(*tokenizer, false);
  for (int32_t id : {word, e4, b8, ad}) ASSERT_TRUE(stream.Step(id).ok());
  // "中" may still turn into U+FFFD x4 if a stray byte follows, so it waits for a word.
  auto delta = stream.Step(word);
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(*delta, "\xE4\xB8\xAD a");
}

TEST(TokenizerDecodeStreamErrors, UnknownIdIsAnErrorAndLeavesTheStreamUsable) {
  auto tokenizer = LoadBaseTokenizer("bytelevel_gpt2");
  DecodeStream stream(*tokenizer, false);
  EXPECT_EQ(stream.Step(tokenizer->id_limit() + 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stream.Step(-1).status().code(), absl::StatusCode::kInvalidArgument);
  auto ids = tokenizer->Encode("ok", false);
  ASSERT_TRUE(ids.ok());
  std::string text;
  for (int32_t id : *ids) text += *stream.Step(id);
  EXPECT_EQ(text + stream.Finish(), "ok");
  EXPECT_EQ(stream.Finish(), "");
  EXPECT_EQ(stream.Step((*ids)[0]).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
