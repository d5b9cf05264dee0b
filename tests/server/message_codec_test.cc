// Request parsing: well-formed messages parse; each kind of malformed message is
// INVALID_ARGUMENT naming what is wrong with it.
#include "server/message_codec.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.pb.h"
#include "server/utf8.h"

namespace ropewire::server {
namespace {

using ::testing::HasSubstr;

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// A length-delimited field: tag (number << 3 | 2), length, value (lengths < 128 only).
std::string LengthDelimited(int number, const std::string& value) {
  return std::string(1, static_cast<char>(number << 3 | 2)) +
         std::string(1, static_cast<char>(value.size())) + value;
}

TEST(MessageCodec, ParsesWellFormedMessages) {
  v1::GenerateRequest original;
  original.set_prompt("héllo");
  original.add_prompt_token_ids(7);
  original.add_stop("\n");
  original.set_temperature(0.5f);
  std::string bytes;
  ASSERT_TRUE(original.SerializeToString(&bytes));
  v1::GenerateRequest parsed;
  ASSERT_TRUE(ParseRequest(Buffer(bytes), &parsed).ok());
  EXPECT_EQ(parsed.prompt(), "héllo");
  EXPECT_EQ(parsed.stop(0), "\n");
  EXPECT_FLOAT_EQ(parsed.temperature(), 0.5f);
}

TEST(MessageCodec, InvalidUtf8NamesTheField) {
  v1::GenerateRequest parsed;
  const absl::Status prompt =
      ParseRequest(Buffer(LengthDelimited(2, std::string("ab\xff\xfe", 4))), &parsed);
  EXPECT_EQ(prompt.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(prompt.message(), HasSubstr("`prompt` is not valid UTF-8 (at byte 2"));

  // The second of two stop strings; the first is fine.
  const absl::Status stop = ParseRequest(
      Buffer(LengthDelimited(13, "ok") + LengthDelimited(13, std::string("\xc0\x80", 2))), &parsed);
  EXPECT_THAT(stop.message(), HasSubstr("`stop` is not valid UTF-8"));

  v1::TokenizeRequest tokenize;
  EXPECT_THAT(ParseRequest(Buffer(LengthDelimited(1, "\xed\xa0\x80")), &tokenize).message(),
              HasSubstr("`text` is not valid UTF-8"));
}

TEST(MessageCodec, TruncatedAndCorruptMessagesSaySo) {
  v1::GenerateRequest parsed;
  // prompt claims 10 bytes, 3 follow.
  const absl::Status truncated = ParseRequest(Buffer(std::string("\x12\x0a"
                                                                 "abc",
                                                                 5)),
                                              &parsed);
  EXPECT_EQ(truncated.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(truncated.message(), HasSubstr("`prompt` at byte 0 runs past the end"));
  // A varint that never ends.
  EXPECT_THAT(ParseRequest(Buffer(std::string("\x20\xff\xff", 3)), &parsed).message(),
              HasSubstr("field 4 at byte 0 is truncated"));
  // Wire type 7 does not exist.
  EXPECT_THAT(ParseRequest(Buffer(std::string("\x0f", 1)), &parsed).message(),
              HasSubstr("not valid protobuf"));
  // Packed prompt_token_ids whose last varint is cut off.
  EXPECT_THAT(
      ParseRequest(Buffer(LengthDelimited(3, std::string("\x01\x82", 2))), &parsed).message(),
      HasSubstr("`prompt_token_ids`: packed values are malformed"));
}

TEST(MessageCodec, UnknownFieldsAreKept) {
  v1::GenerateRequest parsed;
  // Field 99 (an unknown string) with bytes that are not UTF-8: not a reason to refuse.
  const std::string unknown = std::string("\x9a\x06\x02\xff\xfe", 5);
  EXPECT_TRUE(ParseRequest(Buffer(unknown + LengthDelimited(2, "hi")), &parsed).ok());
  EXPECT_EQ(parsed.prompt(), "hi");
}

TEST(MessageCodec, DiagnosisNeverFailsOnGarbage) {
  v1::GenerateRequest message;
  std::string bytes;
  for (int i = 0; i < 4096; ++i) {
    bytes.push_back(static_cast<char>((i * 2654435761u) >> 24));
    EXPECT_FALSE(DiagnoseParseFailure(bytes, message).empty());
  }
}

TEST(Utf8, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  size_t at = 0;
  EXPECT_FALSE(IsValidUtf8("ab\xc3", &at));  // cut short
  EXPECT_EQ(at, 2u);
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace ropewire::server
