// GenerationStream on its own: engine outputs in, client messages out — coalescing of steps a
// slow reader missed, text deltas that add up to the decode, stop strings cut across tokens,
// usage, and the gRPC status each finish reason ends with.
#include "server/generation_stream.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {
namespace {

using scheduler::FinishReason;
using scheduler::RequestOutput;
using ::testing::ElementsAre;

const tokenizer::Tokenizer& DemoTokenizer() {
  static const auto* loaded = [] {
    auto t = tokenizer::LoadModelTokenizer(ropewire::testing::SourceDir() + "/models/demo");
    EXPECT_TRUE(t.ok()) << t.status();
    return new tokenizer::ModelTokenizer(std::move(*t));
  }();
  return *loaded->tokenizer;
}

RequestOutput Tokens(std::vector<int32_t> ids) {
  RequestOutput out;
  for (int32_t id : ids) out.new_tokens.push_back({id, -0.5f, {}});
  return out;
}

RequestOutput Finish(FinishReason reason, std::vector<int32_t> ids = {}) {
  RequestOutput out = Tokens(std::move(ids));
  out.finished = true;
  out.reason = reason;
  out.prompt_tokens = 4;
  out.cached_prompt_tokens = 2;
  return out;
}

TEST(GenerationStream, CoalescesStepsUntilTakenAndFinishesOnce) {
  GenerationStream stream("r", nullptr, true, {}, /*logprobs=*/true);
  v1::GenerateStreamResponse chunk;
  bool last = true;
  EXPECT_FALSE(stream.TakeChunk(&chunk, &last));  // nothing yet
  EXPECT_TRUE(stream.OnOutput(Tokens({3})));
  EXPECT_TRUE(stream.OnOutput(Tokens({4, 5})));
  ASSERT_TRUE(stream.TakeChunk(&chunk, &last));
  EXPECT_FALSE(last);
  EXPECT_THAT(chunk.token_ids(), ElementsAre(3, 4, 5));
  EXPECT_EQ(chunk.logprobs_size(), 3);
  EXPECT_EQ(chunk.request_id(), "r");
  stream.OnOutput(Finish(FinishReason::kLength, {6}));
  ASSERT_TRUE(stream.TakeChunk(&chunk, &last));
  EXPECT_TRUE(last);
  EXPECT_THAT(chunk.token_ids(), ElementsAre(6));
  EXPECT_EQ(chunk.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(chunk.usage().prompt_tokens(), 4u);
  EXPECT_EQ(chunk.usage().completion_tokens(), 4u);
  EXPECT_EQ(chunk.usage().cached_prompt_tokens(), 2u);
  EXPECT_FALSE(stream.TakeChunk(&chunk, &last)) << "the finish is sent once";
  EXPECT_TRUE(stream.finished());
  EXPECT_TRUE(stream.FinalStatus().ok());
  v1::GenerateResponse response;
  stream.FillResponse(&response);
  EXPECT_THAT(response.token_ids(), ElementsAre(3, 4, 5, 6));
  EXPECT_EQ(response.logprobs_size(), 4);
}

TEST(GenerationStream, TextDeltasAddUpToTheDecode) {
  const std::vector<int32_t> ids =
      *DemoTokenizer().Encode("And God said, Let there be light", false);
  GenerationStream stream("r", &DemoTokenizer(), true, {}, false);
  std::string streamed;
  v1::GenerateStreamResponse chunk;
  bool last = false;
  for (int32_t id : ids) {
    stream.OnOutput(Tokens({id}));
    if (stream.TakeChunk(&chunk, &last)) streamed += chunk.text();
  }
  stream.OnOutput(Finish(FinishReason::kStopToken));
  ASSERT_TRUE(stream.TakeChunk(&chunk, &last));
  streamed += chunk.text();
  EXPECT_EQ(chunk.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(streamed, *DemoTokenizer().Decode(ids, true));
  v1::GenerateResponse response;
  stream.FillResponse(&response);
  EXPECT_EQ(response.text(), streamed);
}

TEST(GenerationStream, StopStringEndsTheRequestAndIsCut) {
  const std::vector<int32_t> ids =
      *DemoTokenizer().Encode("And God said, Let there be light", false);
  GenerationStream stream("r", &DemoTokenizer(), true, {"Let"}, false);
  bool keep_going = true;
  size_t fed = 0;
  while (keep_going && fed < ids.size()) keep_going = stream.OnOutput(Tokens({ids[fed++]}));
  EXPECT_FALSE(keep_going) << "the engine is told to stop";
  EXPECT_LT(fed, ids.size());
  // The engine then finishes the request with kStopString.
  stream.OnOutput(Finish(FinishReason::kStopString));
  v1::GenerateResponse response;
  stream.FillResponse(&response);
  EXPECT_EQ(response.text(), "And God said, ");
  EXPECT_EQ(response.stop_string(), "Let");
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_STOP_STRING);
}

TEST(GenerationStream, FinishReasonsMapToStatuses) {
  struct Case {
    FinishReason reason;
    grpc::StatusCode code;
  };
  for (const Case& c : {Case{FinishReason::kCancelled, grpc::StatusCode::CANCELLED},
                        Case{FinishReason::kDeadline, grpc::StatusCode::DEADLINE_EXCEEDED},
                        Case{FinishReason::kError, grpc::StatusCode::INTERNAL},
                        Case{FinishReason::kStopToken, grpc::StatusCode::OK}}) {
    GenerationStream stream("r", nullptr, true, {}, false);
    RequestOutput out = Finish(c.reason);
    if (c.reason == FinishReason::kError) out.status = absl::InternalError("model step failed");
    stream.OnOutput(out);
    EXPECT_EQ(stream.FinalStatus().error_code(), c.code) << static_cast<int>(c.reason);
    if (c.reason == FinishReason::kError) {
      EXPECT_EQ(stream.FinalStatus().error_message(), "model step failed");
    }
  }
}

// An error keeps the engine's code: the scheduler refusing a request that Submit() accepted is
// RESOURCE_EXHAUSTED for the client too.
TEST(GenerationStream, ErrorsKeepTheEnginesCode) {
  GenerationStream stream("r", nullptr, true, {}, false);
  RequestOutput out = Finish(FinishReason::kError);
  out.status = absl::ResourceExhaustedError("the queue is full (1 waiting requests); retry later");
  stream.OnOutput(out);
  EXPECT_EQ(stream.FinalStatus().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(stream.FinalStatus().error_message(),
            "the queue is full (1 waiting requests); retry later");
}

TEST(GenerationStream, ListenerRunsAfterOutputUntilDetached) {
  GenerationStream stream("r", nullptr, true, {}, false);
  int calls = 0;
  stream.SetListener([&] { ++calls; });
  stream.OnOutput(Tokens({1}));
  stream.OnOutput(Tokens({2}));
  EXPECT_EQ(calls, 2);
  stream.Detach();
  stream.OnOutput(Tokens({3}));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace ropewire::server
