// Access-log lines: every caller-supplied string escaped, so no input forges a line; JSON lines
// parse as JSON and carry what was sent.
#include "server/logging.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ropewire::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kHostileId =
    "id\n2030-01-01T00:00:00.000 info access method=Generate request_id=\"forged\"\r\t\"\\"
    "\x01\x7f\xc2\x85\xe2\x80\xa8\xe2\x80\xa9 \xff end";

CallRecord HostileRecord() {
  CallRecord r;
  r.method = "GenerateStream";
  r.request_id = kHostileId;
  r.peer = "ipv4:127.0.0.1:5555";
  r.key_name = "alice";
  r.code = grpc::StatusCode::INVALID_ARGUMENT;
  r.error = "stop: bad \"value\"\n";
  r.finish_reason = "length";
  r.prompt_tokens = 7;
  r.cached_prompt_tokens = 4;
  r.completion_tokens = 9;
  r.queue_seconds = 0.0015;
  r.ttft_seconds = 0.25;
  r.e2e_seconds = 1.5;
  return r;
}

TEST(AccessLog, TextLinesEscapeEverythingThatCouldBreakALine) {
  const std::string line = FormatAccessText(HostileRecord());
  for (char c : line) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << int(c);
  }
  EXPECT_THAT(line, Not(HasSubstr("\xe2\x80\xa8")));
  EXPECT_THAT(line, Not(HasSubstr("\xc2\x85")));
  EXPECT_THAT(line, HasSubstr("request_id=\"id\\n2030-01-01T00:00:00.000 info access "
                              "method=Generate request_id=\\\"forged\\\"\\r\\t\\\"\\\\\\x01\\x7f"
                              "\\u0085\\u2028\\u2029 \\xff end\""));
  EXPECT_THAT(line, HasSubstr(" key=\"alice\" code=INVALID_ARGUMENT finish=length prompt_tokens=7 "
                              "cached_tokens=4 completion_tokens=9 queue_ms=1.500 ttft_ms=250.000 "
                              "e2e_ms=1500.000 error=\"stop: bad \\\"value\\\"\\n\""));
}

TEST(AccessLog, JsonLinesParseAndCarryTheRecord) {
  const std::string line = "{" + FormatAccessJsonMembers(HostileRecord()) + "}";
  for (char c : line) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << int(c);
  const nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["log"], "access");
  EXPECT_EQ(j["method"], "GenerateStream");
  // Valid UTF-8 comes back as sent; the one byte that is not UTF-8 becomes U+FFFD.
  std::string expected = kHostileId;
  expected.replace(expected.find("\xff"), 1, "\xef\xbf\xbd");
  EXPECT_EQ(j["request_id"], expected);
  EXPECT_EQ(j["key"], "alice");
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["prompt_tokens"], 7);
  EXPECT_EQ(j["cached_tokens"], 4);
  EXPECT_EQ(j["completion_tokens"], 9);
  EXPECT_DOUBLE_EQ(j["queue_ms"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["e2e_ms"].get<double>(), 1500.0);
  EXPECT_EQ(j["error"], "stop: bad \"value\"\n");

  CallRecord plain;
  plain.method = "GetModelInfo";
  const nlohmann::json p = nlohmann::json::parse("{" + FormatAccessJsonMembers(plain) + "}");
  EXPECT_TRUE(p["finish_reason"].is_null());
  EXPECT_TRUE(p["ttft_ms"].is_null());
  EXPECT_FALSE(p.contains("error"));
}

TEST(AccessLog, EscapeForLogLeavesOrdinaryTextAlone) {
  EXPECT_EQ(EscapeForLog("rw-1a2b-7 héllo €"), "rw-1a2b-7 héllo €");
  EXPECT_EQ(EscapeForLog(""), "");
}

TEST(LogFormat, ParsesTheTwoNames) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("yaml").ok());
}

}  // namespace
}  // namespace ropewire::server
