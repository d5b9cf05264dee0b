// Stop strings over streamed text: matched across chunk and token boundaries, only a possible
// stop-string start held back, the stop string itself never returned.
#include <gtest/gtest.h>

#include <random>

#include "tests/tokenizer/fixtures.h"
#include "tokenizer/streaming.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer::testing {
namespace {

struct Result {
  std::string text;
  std::optional<size_t> stop;
};

// Feeds `chunks` and finishes; also checks that no chunk output is held longer than needed.
Result FeedChunks(const std::vector<std::string>& stops, const std::vector<std::string>& chunks) {
  StopStringMatcher matcher(stops);
  Result result;
  for (const std::string& chunk : chunks) {
    StopStringMatcher::Output out = matcher.Push(chunk);
    result.text += out.text;
    if (out.stop_index) {
      result.stop = out.stop_index;
      EXPECT_TRUE(matcher.stopped());
      EXPECT_EQ(matcher.Push("more").text, "");  // nothing after a stop
      return result;
    }
  }
  result.text += matcher.Finish();
  return result;
}

TEST(TokenizerStopStrings, MatchesAcrossChunksAndDropsTheStopString) {
  const Result result = FeedChunks({"STOP"}, {"abc S", "T", "O", "P and more"});
  EXPECT_EQ(result.text, "abc ");
  EXPECT_EQ(result.stop, 0u);
}

TEST(TokenizerStopStrings, HoldsBackOnlyAPossibleStart) {
  StopStringMatcher matcher({"STOP"});
  EXPECT_EQ(matcher.Push("xyzST").text, "xyz");  // "ST" may begin "STOP"
  EXPECT_EQ(matcher.Push("ay").text, "STay");    // it did not
  EXPECT_EQ(matcher.Push("S").text, "");
  EXPECT_EQ(matcher.Finish(), "S");  // generation ended some other way: release it
  EXPECT_FALSE(matcher.stopped());
}

TEST(TokenizerStopStrings, NoStopStringsPassesTextThrough) {
  StopStringMatcher matcher({"", ""});
  EXPECT_EQ(matcher.Push("anything").text, "anything");
  EXPECT_EQ(matcher.Finish(), "");
}

TEST(TokenizerStopStrings, IndexRefersToTheCallersList) {
  const Result result = FeedChunks({"", "never", "", "stop"}, {"go", " st", "op"});
  EXPECT_EQ(result.text, "go ");
  EXPECT_EQ(result.stop, 3u);  // empty entries are skipped, not removed
}

TEST(TokenizerStopStrings, TheStopThatEndsFirstWins) {
  // "bc" completes before "abcd" could, whatever the chunking.
  EXPECT_EQ(FeedChunks({"abcd", "bc"}, {"abcd"}).stop, 1u);
  EXPECT_EQ(FeedChunks({"abcd", "bc"}, {"a", "b", "c", "d"}).stop, 1u);
  EXPECT_EQ(FeedChunks({"abcd", "bc"}, {"abcd"}).text, "a");
  // Ending together: the longer (earlier-starting) one.
  const Result same_end = FeedChunks({"cd", "bcd"}, {"abcde"});
  EXPECT_EQ(same_end.stop, 1u);
  EXPECT_EQ(same_end.text, "a");
}

TEST(TokenizerStopStrings, OverlappingPrefixesAreHeldUntilDecided) {
  // "aab" inside "aaab": the hold must keep "aa" after seeing "aaa".
  const Result result = FeedChunks({"aab"}, {"a", "a", "a", "b", "c"});
  EXPECT_EQ(result.text, "a");
  EXPECT_EQ(result.stop, 0u);
}

TEST(TokenizerStopStrings, MultiByteStopStrings) {
  const Result result =
      FeedChunks({"\xE4\xB8\xAD\xE6\x96\x87"}, {"ab\xE4\xB8\xAD", "\xE6\x96\x87!"});
  EXPECT_EQ(result.text, "ab");  // "中文" stopped; "中" was held, never sent
  EXPECT_EQ(result.stop, 0u);
}

// Property: the outcome does not depend on how the text is chunked.
TEST(TokenizerStopStrings, ChunkingDoesNotChangeTheResult) {
  const std::vector<std::string> stops = {"\n\n", "END", "<|eot|>", "\xF0\x9F\x98\x80!"};
  const std::vector<std::string> texts = {"line one\nline two\n\nrest",
                                          "no stop here at all, E N D",
                                          "almost <|eot| but <|eot|>",
                                          "emoji \xF0\x9F\x98\x80 then \xF0\x9F\x98\x80! done",
                                          "ENEND",
                                          "\n\n"};
  std::mt19937 rng(7);
  for (const std::string& text : texts) {
    const Result whole = FeedChunks(stops, {text});
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<std::string> chunks;
      size_t pos = 0;
      while (pos < text.size()) {  // cut only at character boundaries, like real deltas
        size_t end = pos;
        const int chars = std::uniform_int_distribution<int>(0, 4)(rng);
        for (int c = 0; c < chars && end < text.size(); ++c) {
          end += Utf8SequenceLength(static_cast<unsigned char>(text[end]));
        }
        chunks.push_back(text.substr(pos, end - pos));
        pos = end;
      }
      const Result chunked = FeedChunks(stops, chunks);
      EXPECT_EQ(chunked.text, whole.text) << Json(text).dump();
      EXPECT_EQ(chunked.stop, whole.stop) << Json(text).dump();
    }
  }
}

// Stop strings on tokens as generated: they span token boundaries, and byte-level tokens that
// split a character.
class TokenizerTextStreamer : public ::testing::Test {
 protected:
  Result Generate(const std::string& generated, std::vector<std::string> stops) {
    auto ids = tokenizer_->Encode(generated, /*add_special_tokens=*/false);
    EXPECT_TRUE(ids.ok());
    TextStreamer streamer(*tokenizer_, /*skip_special_tokens=*/true, std::move(stops));
    Result result;
    for (int32_t id : *ids) {
      auto out = streamer.Step(id);
      EXPECT_TRUE(out.ok());
      EXPECT_TRUE(IsValidUtf8(out->text));
      result.text += out->text;
      if (out->stop_index) {
        result.stop = out->stop_index;
        return result;
      }
    }
    StopStringMatcher::Output tail = streamer.Finish();
    result.text += tail.text;
    result.stop = tail.stop_index;
    return result;
  }
  std::unique_ptr<Tokenizer> tokenizer_ = LoadBaseTokenizer("bytelevel_llama3");
};

TEST_F(TokenizerTextStreamer, StopSpanningTokens) {
  const Result result = Generate("The answer is 42. The next question", {"is 42."});
  EXPECT_EQ(result.text, "The answer ");
  EXPECT_EQ(result.stop, 0u);
}

TEST_F(TokenizerTextStreamer, StopInsideASplitCharacter) {
  // The emoji is several byte-level tokens; the stop must not leak part of it.
  const Result result =
      Generate("emoji \xF0\x9F\x98\x80\xF0\x9F\x98\x82 end", {"\xF0\x9F\x98\x82"});
  EXPECT_EQ(result.text, "emoji \xF0\x9F\x98\x80");
  EXPECT_EQ(result.stop, 0u);
}

TEST_F(TokenizerTextStreamer, NoStopReturnsTheWholeDecode) {
  const std::string text = "Caf\xC3\xA9 \xE5\x8C\x97\xE4\xBA\xAC and more";
  const Result result = Generate(text, {"zzz", "Caf\xC3\xA9!"});
  EXPECT_EQ(result.text, text);
  EXPECT_FALSE(result.stop);
}

TEST_F(TokenizerTextStreamer, SpecialTokensSkippedBeforeMatching) {
  const Result result = Generate("a<|eot_id|>b<|endoftext|>STOP", {"ab", "STOP"});
  EXPECT_EQ(result.text, "");
  EXPECT_EQ(result.stop, 0u);
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
