// Encodings and decodings of every corpus line must equal the reference `tokenizers` library's,
// for every fixture tokenizer and variant (tests/fixtures/tokenizers/reference/*.json).
#include <gtest/gtest.h>

#include "tests/tokenizer/fixtures.h"

namespace ropewire::tokenizer::testing {
namespace {

// Printable form of a corpus line for failure messages.
std::string Quoted(const std::string& text) { return Json(text).dump(); }

class TokenizerGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    reference_ = LoadReference(GetParam());
    tokenizer_ = LoadReferenceTokenizer(reference_);
  }
  Reference reference_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_P(TokenizerGolden, EncodesEveryLineLikeTheReference) {
  ASSERT_GT(reference_.cases.size(), 50u);
  for (const ReferenceCase& item : reference_.cases) {
    SCOPED_TRACE(Quoted(item.text));
    auto with_special = tokenizer_->Encode(item.text, /*add_special_tokens=*/true);
    ASSERT_TRUE(with_special.ok()) << with_special.status();
    EXPECT_EQ(*with_special, item.ids);
    auto without_special = tokenizer_->Encode(item.text, /*add_special_tokens=*/false);
    ASSERT_TRUE(without_special.ok()) << without_special.status();
    EXPECT_EQ(*without_special, item.ids_no_special);
  }
}

TEST_P(TokenizerGolden, DecodesEveryLineLikeTheReference) {
  int compared = 0;
  for (const ReferenceCase& item : reference_.cases) {
    SCOPED_TRACE(Quoted(item.text));
    for (bool skip_special : {false, true}) {
      const std::optional<std::string>& expected =
          skip_special ? item.decoded_skip_special : item.decoded;
      if (!expected) continue;  // the reference panicked on this one
      auto decoded = tokenizer_->Decode(item.ids, skip_special);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, *expected) << "skip_special_tokens=" << skip_special;
      ++compared;
    }
  }
  EXPECT_GT(compared, 100);
}

TEST_P(TokenizerGolden, DecodesArbitraryIdSequencesLikeTheReference) {
  ASSERT_GE(reference_.slices.size(), 40u);
  for (const ReferenceSlice& slice : reference_.slices) {
    SCOPED_TRACE(Json(slice.ids).dump());
    for (bool skip_special : {false, true}) {
      const std::optional<std::string>& expected =
          skip_special ? slice.decoded_skip_special : slice.decoded;
      if (!expected) continue;
      auto decoded = tokenizer_->Decode(slice.ids, skip_special);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, *expected) << "skip_special_tokens=" << skip_special;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerGolden, ::testing::ValuesIn(ReferenceNames()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

}  // namespace
}  // namespace ropewire::tokenizer::testing
