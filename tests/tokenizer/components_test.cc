// Building blocks: UTF-8 handling, Oniguruma-compatible pattern translation and match
// iteration, the word cache and the merge loops. Expected values follow the documented
// behaviour of Rust's from_utf8_lossy and Oniguruma's find_iter.
#include <gtest/gtest.h>

#include <thread>

#include "tests/tokenizer/fixtures.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer::testing {
namespace {

const std::string kFffd(kReplacementChar);

std::string Lossy(std::string_view bytes) {
  std::string out;
  EXPECT_EQ(AppendUtf8Lossy(bytes, /*final=*/true, out), bytes.size());
  return out;
}

TEST(TokenizerUtf8, LossyReplacesEachMaximalIllFormedSubpart) {
  EXPECT_EQ(Lossy("a\xE4\xB8\xAD"
                  "b"),
            "a\xE4\xB8\xAD"
            "b");
  EXPECT_EQ(Lossy("\xE4\xB8"
                  "A"),
            kFffd + "A");                                               // truncated: one U+FFFD
  EXPECT_EQ(Lossy("\xF0\x80"), kFffd + kFffd);                          // F0 80 is never valid
  EXPECT_EQ(Lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);              // surrogate
  EXPECT_EQ(Lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(Lossy("\xF0\x9F\x98"), kFffd);
}

TEST(TokenizerUtf8, LossyHoldsBackAnIncompleteTailUnlessFinal) {
  std::string out;
  EXPECT_EQ(AppendUtf8Lossy("ok\xF0\x9F\x98", /*final=*/false, out), 2u);
  EXPECT_EQ(out, "ok");
  out.clear();
  EXPECT_EQ(AppendUtf8Lossy("ok\xF0\x80", /*final=*/false, out), 4u);  // already invalid
  EXPECT_EQ(out, "ok" + kFffd + kFffd);
}

TEST(TokenizerUtf8, Validity) {
  EXPECT_TRUE(IsValidUtf8("plain \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_EQ(FirstInvalidUtf8Offset("abc\xFF"), 3u);
}

TEST(TokenizerByteLevel, MapsEveryByteToAPrintableCharacterAndBack) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();
  EXPECT_EQ(alphabet.CharFor(' '), "\xC4\xA0");  // "Ġ"
  EXPECT_EQ(alphabet.CharFor('a'), "a");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string mapped, back;
  alphabet.Encode(all, mapped);
  ASSERT_TRUE(alphabet.Decode(mapped, back));
  EXPECT_EQ(back, all);
  EXPECT_FALSE(alphabet.Decode("\xE4\xB8\xAD", back));  // not an alphabet character
}

TEST(TokenizerPattern, TranslatesOnigurumaClasses) {
  EXPECT_EQ(TranslatePattern(R"(\s+(?!\S))"), R"([\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}]))");
  EXPECT_EQ(TranslatePattern(R"([^\s\p{L}\p{N}])"), R"([^\t-\r\x{85}\p{Z}\p{L}\p{N}])");
  EXPECT_EQ(TranslatePattern(R"(\p{Han}\P{Latin}\p{^Greek})"),
            R"(\p{sc:Han}\P{sc:Latin}\p{^sc:Greek})");
  EXPECT_EQ(TranslatePattern(R"(\\s\[\s])"), R"(\\s\[[\t-\r\x{85}\p{Z}]])");
}

std::vector<std::string> Pieces(std::string_view pattern, std::string_view text) {
  auto regex = Regex::Compile(pattern);
  EXPECT_TRUE(regex.ok()) << regex.status();
  std::vector<MatchSpan> spans;
  EXPECT_TRUE(MakeRegexPattern(*regex)->FindMatches(text, spans).ok());
  std::vector<std::string> pieces;
  for (const MatchSpan& span : spans) {
    pieces.push_back((span.is_match ? "+" : "-") +
                     std::string(text.substr(span.begin, span.end - span.begin)));
  }
  return pieces;
}

TEST(TokenizerPattern, SpaceClassMatchesWhatOnigurumaMatches) {
  // U+0085 is space to Oniguruma, U+001F is not (PCRE2's own \s disagrees on both).
  EXPECT_EQ(Pieces(R"(\s)",
                   "a\xC2\x85"
                   "b\x1F"
                   "c"),
            (std::vector<std::string>{"-a", "+\xC2\x85",
                                      "-b\x1F"
                                      "c"}));
}

TEST(TokenizerPattern, EmptyMatchesFollowOnigurumaIteration) {
  // An empty match where the previous match ended is skipped; elsewhere it splits the text.
  EXPECT_EQ(Pieces("x*", "abxxc"),
            (std::vector<std::string>{"+", "-a", "+", "-b", "+xx", "-c", "+"}));
  EXPECT_EQ(Pieces(R"(^\s*$)", "\r\n\ra></\n\n<"),
            (std::vector<std::string>{"+\r", "-\n\ra></\n", "+", "-\n<"}));
}

TEST(TokenizerPattern, AnchorsAreLineAnchors) {
  EXPECT_EQ(Pieces("^a", "a\na"), (std::vector<std::string>{"+a", "-\n", "+a"}));
}

TEST(Tokenizer, EncodingIsThreadSafe) {
  auto tokenizer = LoadBaseTokenizer("bytelevel_llama3");
  const Reference reference = LoadReference("bytelevel_llama3");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        for (const ReferenceCase& item : reference.cases) {
          auto ids = tokenizer->Encode(item.text);
          if (!ids.ok() || *ids != item.ids) ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Tokenizer, LongWordsUseTheQueueMergeAndAgreeWithShortOnes) {
  // A word far longer than the linear merge limit must encode to the concatenation of the
  // same word's pieces merged the other way; a repeated unit keeps the comparison exact.
  auto tokenizer = LoadBaseTokenizer("bytelevel_gpt2");
  const std::string unit = "abcdefgh";
  std::string word;
  for (int i = 0; i < 64; ++i) word += unit;
  auto long_ids = tokenizer->Encode(word, false);
  ASSERT_TRUE(long_ids.ok());
  auto text = tokenizer->Decode(*long_ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, word);
  // Same result with the cache warm.
  EXPECT_EQ(*tokenizer->Encode(word, false), *long_ids);
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
