// BuildRequest on its own: what a GenerateRequest message becomes in the engine, its defaults,
// and the INVALID_ARGUMENT / FAILED_PRECONDITION errors that name the offending field.
#include "server/request_builder.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const tokenizer::ModelTokenizer& DemoTokenizer() {
  static const auto* tokenizer = [] {
    auto loaded = tokenizer::LoadModelTokenizer(ropewire::testing::SourceDir() + "/models/demo");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return new tokenizer::ModelTokenizer(std::move(*loaded));
  }();
  return *tokenizer;
}

v1::GenerateRequest TokenIds(std::initializer_list<uint32_t> ids) {
  v1::GenerateRequest m;
  for (uint32_t id : ids) m.add_prompt_token_ids(id);
  return m;
}

absl::Status ErrorOf(const v1::GenerateRequest& m,
                     const tokenizer::ModelTokenizer* tokenizer = nullptr) {
  auto built = BuildRequest(m, tokenizer, RequestLimits());
  return built.ok() ? absl::OkStatus() : built.status();
}

TEST(RequestBuilder, TokenIdsWithDefaults) {
  v1::GenerateRequest m = TokenIds({5, 6, 7});
  m.set_request_id("r1");
  RequestLimits limits;
  limits.default_max_tokens = 12;
  auto built = BuildRequest(m, nullptr, limits);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->request.request_id, "r1");
  EXPECT_THAT(built->request.prompt, ElementsAre(5, 6, 7));
  EXPECT_EQ(built->request.max_tokens, 12);  // max_tokens 0: the server's default
  EXPECT_FALSE(built->request.sampling.seed.has_value());
  EXPECT_FALSE(built->request.ignore_eos);
  EXPECT_TRUE(built->skip_special_tokens);
  EXPECT_TRUE(built->stop_strings.empty());
}

TEST(RequestBuilder, SamplingAndStopsAreCarriedOver) {
  v1::GenerateRequest m = TokenIds({1});
  m.set_max_tokens(30);
  m.set_temperature(0.5f);
  m.set_top_k(7);
  m.set_top_p(0.9f);
  m.set_seed(42);
  m.set_logprobs(3);
  m.add_stop_token_ids(9);
  m.set_ignore_eos(true);
  m.set_skip_special_tokens(false);
  auto built = BuildRequest(m, nullptr, RequestLimits());
  ASSERT_TRUE(built.ok()) << built.status();
  const auto& r = built->request;
  EXPECT_EQ(r.max_tokens, 30);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.sampling.logprobs, 3);
  EXPECT_THAT(r.stop_token_ids, ElementsAre(9));
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_FALSE(built->skip_special_tokens);
}

TEST(RequestBuilder, TextPromptIsTokenized) {
  v1::GenerateRequest m;
  m.set_prompt("In the beginning");
  m.add_stop("LORD");
  auto built = BuildRequest(m, &DemoTokenizer(), RequestLimits());
  ASSERT_TRUE(built.ok()) << built.status();
  auto expected = DemoTokenizer().tokenizer->Encode("In the beginning", true);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(built->request.prompt, *expected);
  EXPECT_THAT(built->stop_strings, ElementsAre("LORD"));
}

TEST(RequestBuilder, ErrorsNameTheField) {
  EXPECT_THAT(std::string(ErrorOf(v1::GenerateRequest()).message()),
              HasSubstr("prompt: exactly one"));
  v1::GenerateRequest both = TokenIds({1});
  both.set_prompt("x");
  EXPECT_EQ(ErrorOf(both, &DemoTokenizer()).code(), absl::StatusCode::kInvalidArgument);
  v1::GenerateRequest nan = TokenIds({1});
  nan.set_temperature(std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(std::string(ErrorOf(nan).message()),
              HasSubstr("temperature: must be a finite number"));
  v1::GenerateRequest inf = TokenIds({1});
  inf.set_frequency_penalty(std::numeric_limits<float>::infinity());
  EXPECT_THAT(std::string(ErrorOf(inf).message()), HasSubstr("frequency_penalty"));
  v1::GenerateRequest logprobs = TokenIds({1});
  logprobs.set_logprobs(21);
  EXPECT_THAT(std::string(ErrorOf(logprobs).message()), HasSubstr("logprobs: must be at most 20"));
  v1::GenerateRequest empty_stop = TokenIds({1});
  empty_stop.add_stop("");
  EXPECT_THAT(std::string(ErrorOf(empty_stop, &DemoTokenizer()).message()),
              HasSubstr("stop: each"));
  v1::GenerateRequest many_stops = TokenIds({1});
  for (int i = 0; i < 17; ++i) many_stops.add_stop("s");
  EXPECT_THAT(std::string(ErrorOf(many_stops, &DemoTokenizer()).message()),
              HasSubstr("at most 16"));
}

TEST(RequestBuilder, TextNeedsATokenizer) {
  v1::GenerateRequest text;
  text.set_prompt("hello");
  EXPECT_EQ(ErrorOf(text).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ErrorOf(text).message()), HasSubstr("prompt_token_ids"));
  v1::GenerateRequest stops = TokenIds({1});
  stops.add_stop("x");
  EXPECT_EQ(ErrorOf(stops).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RequestBuilder, HugeMaxTokensIsClampedNotWrapped) {
  v1::GenerateRequest m = TokenIds({1});
  m.set_max_tokens(std::numeric_limits<uint32_t>::max());
  auto built = BuildRequest(m, nullptr, RequestLimits());
  ASSERT_TRUE(built.ok());
  EXPECT_GT(built->request.max_tokens, 0);
}

}  // namespace
}  // namespace ropewire::server

namespace ropewire::server {
namespace {

TEST(RequestBuilder, RequestIdsAreLimitedInLength) {
  v1::GenerateRequest m = TokenIds({1, 2});
  m.set_request_id(std::string(256, 'r'));
  EXPECT_TRUE(BuildRequest(m, nullptr, RequestLimits()).ok());
  m.set_request_id(std::string(257, 'r'));
  const absl::Status too_long = ErrorOf(m);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.message(), HasSubstr("request_id: at most 256 bytes, got 257"));
}

// A text prompt past the byte limit is refused without being tokenized: the message counts
// bytes, where the tokenizer (or the engine) would speak of tokens.
TEST(RequestBuilder, OverlongTextIsRefusedBeforeTokenizing) {
  RequestLimits limits;
  limits.max_prompt_bytes = 1000;
  v1::GenerateRequest m;
  m.set_prompt(std::string(1000, 'a'));
  EXPECT_TRUE(BuildRequest(m, &DemoTokenizer(), limits).ok());
  m.set_prompt(std::string(8 << 20, 'a'));
  auto refused = BuildRequest(m, &DemoTokenizer(), limits);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("prompt: 8388608 bytes is more text than the model's maximum length can "
                        "hold (at most 1000 bytes)"));
}

}  // namespace
}  // namespace ropewire::server
