// The demo model with its own tokenizer, over real gRPC: text prompts, streamed text deltas
// that concatenate to the unary text, stop strings cut exactly, and Tokenize agreeing with the
// tokenizer library.
#include <signal.h>

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/server/server_process.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;

const std::string kDemo = std::string(ROPEWIRE_SOURCE_DIR) + "/models/demo";

class DemoE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->Start({"--model", kDemo, "--threads", "1"})) << server_->log();
    ASSERT_TRUE(server_->WaitServing()) << server_->log();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->log();
    delete server_;
  }
  void SetUp() override { stub_ = v1::Inference::NewStub(server_->Channel()); }

  v1::GenerateResponse Unary(const v1::GenerateRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    v1::GenerateResponse response;
    const grpc::Status status = stub_->Generate(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Concatenated text and ids of a stream, and the last message.
  std::pair<std::string, std::vector<int32_t>> Stream(const v1::GenerateRequest& request,
                                                      v1::GenerateStreamResponse* last) {
    grpc::ClientContext context;
    auto reader = stub_->GenerateStream(&context, request);
    std::string text;
    std::vector<int32_t> ids;
    v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
      text += message.text();
      ids.insert(ids.end(), message.token_ids().begin(), message.token_ids().end());
      *last = message;
    }
    EXPECT_TRUE(reader->Finish().ok());
    return {text, ids};
  }

  static ServerProcess* server_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

ServerProcess* DemoE2E::server_ = nullptr;

v1::GenerateRequest TokenRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_token_ids(id);
  r.set_max_tokens(max_tokens);
  r.set_temperature(0.0f);
  r.set_ignore_eos(true);
  return r;
}

v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.set_max_tokens(max_tokens);
  r.set_temperature(0.0f);
  return r;
}

TEST_F(DemoE2E, TextPromptAnswersAndStreamMatchesUnary) {
  for (const std::string prompt : {"In the beginning", "And the LORD said", "Blessed are the"}) {
    const v1::GenerateRequest request = TextRequest(prompt, 40);
    const v1::GenerateResponse unary = Unary(request);
    EXPECT_FALSE(unary.text().empty()) << prompt;
    EXPECT_GT(unary.usage().prompt_tokens(), 1u);  // BOS + the prompt's tokens
    v1::GenerateStreamResponse last;
    const auto [text, ids] = Stream(request, &last);
    EXPECT_EQ(text, unary.text()) << prompt;
    EXPECT_EQ(ids, std::vector<int32_t>(unary.token_ids().begin(), unary.token_ids().end()));
    EXPECT_EQ(last.finish_reason(), unary.finish_reason());
  }
}

TEST_F(DemoE2E, StopStringCutsTheTextExactly) {
  const v1::GenerateResponse full = Unary(TextRequest("And the LORD said", 40));
  ASSERT_GT(full.text().size(), 30u);
  // A stop string taken from the middle of the unstopped text.
  const std::string stop = full.text().substr(12, 5);
  v1::GenerateRequest request = TextRequest("And the LORD said", 40);
  request.add_stop(stop);
  const v1::GenerateResponse stopped = Unary(request);
  EXPECT_EQ(stopped.finish_reason(), v1::FINISH_REASON_STOP_STRING);
  EXPECT_EQ(stopped.stop_string(), stop);
  EXPECT_EQ(stopped.text(), full.text().substr(0, full.text().find(stop)));
  v1::GenerateStreamResponse last;
  const auto streamed = Stream(request, &last);
  EXPECT_EQ(streamed.first, stopped.text());
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_STOP_STRING);
  EXPECT_EQ(last.stop_string(), stop);
}

TEST_F(DemoE2E, TokenizeAgreesWithTheTokenizer) {
  auto tokenizer = tokenizer::LoadModelTokenizer(kDemo);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const std::string text :
       {"In the beginning God created the heaven and the earth.", "Amen"}) {
    grpc::ClientContext context;
    v1::TokenizeRequest request;
    request.set_text(text);
    v1::TokenizeResponse response;
    ASSERT_TRUE(stub_->Tokenize(&context, request, &response).ok());
    const auto expected = tokenizer->tokenizer->Encode(text, true);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
              *expected);
  }
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_TRUE(info.has_tokenizer());
  EXPECT_THAT(info.eos_token_ids(), ::testing::Contains(1));
}

TEST_F(DemoE2E, CancelledStreamFreesItsBlocks) {
  grpc::ClientContext context;
  auto reader = stub_->GenerateStream(&context, TokenRequest({0, 5, 6, 7, 8}, 400));
  v1::GenerateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  v1::ServerStats stats;
  EXPECT_TRUE(WaitIdle(*stub_, &stats)) << stats.DebugString();
  EXPECT_LT(stats.generated_tokens(), 100000u);
}

TEST_F(DemoE2E, ExpiredDeadlineFreesItsBlocks) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 30ms);
  v1::GenerateResponse response;
  // 400 tokens of the demo model take well over 30 ms on any machine (a separate forward each).
  const grpc::Status status =
      stub_->Generate(&context, TokenRequest({0, 9, 10, 11}, 400), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::ServerStats stats;
  EXPECT_TRUE(WaitIdle(*stub_, &stats)) << stats.DebugString();
}

}  // namespace
}  // namespace ropewire::testing
