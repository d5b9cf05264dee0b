// The real ropewire-server over real gRPC on a fixture model: generation (unary and streaming),
// model info, stats, health, reflection, parameter validation, cancellation and deadlines
// freeing KV blocks, queue overflow, and many concurrent streams.
#include <atomic>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/common/fixtures.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::unique_ptr<ServerProcess> StartServer(const std::vector<std::string>& extra,
                                           const std::string& model = FixtureDir("llama_gqa")) {
  auto server = std::make_unique<ServerProcess>();
  std::vector<std::string> args = {"--model", model, "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  EXPECT_TRUE(server->Start(args)) << server->log();
  EXPECT_TRUE(server->WaitServing()) << server->log();
  return server;
}

v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_token_ids(id);
  r.set_max_tokens(max_tokens);
  r.set_temperature(0.0f);
  r.set_ignore_eos(true);
  return r;
}

class ServerE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = StartServer({"--num-kv-blocks", "64", "--block-size", "16"}).release();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->Stop(SIGTERM), 0) << server_->log();
    delete server_;
  }
  void SetUp() override { stub_ = v1::Inference::NewStub(server_->Channel()); }

  grpc::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 60s);
    return stub_->Generate(&context, request, response);
  }

  static ServerProcess* server_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

ServerProcess* ServerE2E::server_ = nullptr;

TEST_F(ServerE2E, UnaryGreedyMatchesReference) {
  const auto golden = LoadGolden("llama_gqa");
  for (const auto& c : golden) {
    v1::GenerateResponse response;
    ASSERT_TRUE(Generate(GreedyRequest(c.prompt, 32), &response).ok());
    EXPECT_EQ(std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end()),
              c.greedy);
    EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(response.usage().prompt_tokens(), c.prompt.size());
    EXPECT_EQ(response.usage().completion_tokens(), 32u);
    EXPECT_FALSE(response.request_id().empty());
  }
}

TEST_F(ServerE2E, StreamConcatenatesToTheUnaryResult) {
  const auto c = LoadGolden("llama_gqa")[1];
  v1::GenerateRequest request = GreedyRequest(c.prompt, 32);
  request.set_logprobs(3);
  v1::GenerateResponse unary;
  ASSERT_TRUE(Generate(request, &unary).ok());

  grpc::ClientContext context;
  auto reader = stub_->GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  std::vector<int32_t> tokens;
  int messages = 0, logprobs = 0;
  v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&message)) {
    ++messages;
    EXPECT_EQ(reason, v1::FINISH_REASON_UNSPECIFIED) << "a message after the last one";
    tokens.insert(tokens.end(), message.token_ids().begin(), message.token_ids().end());
    logprobs += message.logprobs_size();
    for (const auto& lp : message.logprobs()) EXPECT_EQ(lp.top_size(), 3);
    reason = message.finish_reason();
    if (reason != v1::FINISH_REASON_UNSPECIFIED) {
      EXPECT_EQ(message.usage().completion_tokens(), 32u);
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, std::vector<int32_t>(unary.token_ids().begin(), unary.token_ids().end()));
  EXPECT_EQ(reason, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(logprobs, 32);
  EXPECT_GE(messages, 2);
  // Greedy picks the most likely token: its logprob is the top alternative's.
  ASSERT_EQ(unary.logprobs_size(), 32);
  EXPECT_FLOAT_EQ(unary.logprobs(0).logprob(), unary.logprobs(0).top(0).logprob());
}

TEST_F(ServerE2E, ModelInfoAndStats) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.model_type(), "llama");
  EXPECT_EQ(info.position_encoding().kind(), "rope");
  EXPECT_EQ(info.position_encoding().rope_type(), "default");
  EXPECT_EQ(info.position_encoding().rotary_dim(), 16u);
  EXPECT_EQ(info.max_model_len(), 512u);
  EXPECT_EQ(info.vocab_size(), 256u);
  EXPECT_EQ(info.num_kv_heads(), 2u);
  EXPECT_EQ(info.block_size(), 16u);
  EXPECT_EQ(info.kv_cache_blocks(), 64u);
  EXPECT_FALSE(info.has_tokenizer());
  v1::ServerStats stats;
  EXPECT_TRUE(WaitIdle(*stub_, &stats));
  EXPECT_EQ(stats.state(), "serving");
}

TEST_F(ServerE2E, HealthAndReflection) {
  auto health = grpc::health::v1::Health::NewStub(server_->Channel());
  for (const std::string service : {"", "ropewire.v1.Inference"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(server_->Channel());
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::Contains("ropewire.v1.Inference"));
  EXPECT_THAT(names, ::testing::Contains("grpc.health.v1.Health"));
  // Every listed service can be described, as grpcurl, ghz and k6 need before they call anything.
  for (const std::string& name : names) {
    grpc::reflection::v1alpha::ServerReflectionRequest describe;
    describe.set_file_containing_symbol(name);
    ASSERT_TRUE(stream->Write(describe));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_FALSE(response.has_error_response())
        << name << ": " << response.error_response().error_message();
    EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0) << name;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerE2E, HealthNamesUnknownServicesAndWatchSendsTheCurrentStatus) {
  auto health = grpc::health::v1::Health::NewStub(server_->Channel());
  grpc::ClientContext check_context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("no.such.Service");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&check_context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  for (const auto& [service, expected] :
       std::vector<std::pair<std::string, grpc::health::v1::HealthCheckResponse::ServingStatus>>{
           {"ropewire.v1.Inference", grpc::health::v1::HealthCheckResponse::SERVING},
           {"no.such.Service", grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN}}) {
    grpc::ClientContext watch_context;
    request.set_service(service);
    auto watch = health->Watch(&watch_context, request);
    ASSERT_TRUE(watch->Read(&response)) << service;
    EXPECT_EQ(response.status(), expected) << service;
    watch_context.TryCancel();
    while (watch->Read(&response)) {
    }
    EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
}

TEST_F(ServerE2E, EachInvalidParameterIsNamed) {
  const std::vector<int32_t> prompt = {1, 2, 3};
  struct Case {
    std::string field;
    std::function<void(v1::GenerateRequest&)> edit;
  };
  const std::vector<Case> cases = {
      {"temperature", [](auto& r) { r.set_temperature(-0.5f); }},
      {"temperature", [](auto& r) { r.set_temperature(NAN); }},
      {"top_k", [](auto& r) { r.set_top_k(-3); }},
      {"top_p", [](auto& r) { r.set_top_p(0.0f); }},
      {"top_p", [](auto& r) { r.set_top_p(1.5f); }},
      {"min_p", [](auto& r) { r.set_min_p(2.0f); }},
      {"repetition_penalty", [](auto& r) { r.set_repetition_penalty(0.0f); }},
      {"presence_penalty", [](auto& r) { r.set_presence_penalty(3.0f); }},
      {"frequency_penalty", [](auto& r) { r.set_frequency_penalty(-2.5f); }},
      {"logprobs", [](auto& r) { r.set_logprobs(50); }},
      {"maximum model length", [](auto& r) { r.set_max_tokens(600); }},
      {"prompt", [](auto& r) { r.clear_prompt_token_ids(); }},
      {"prompt", [](auto& r) { r.set_prompt("hello"); }},
      {"token id 300", [](auto& r) { r.add_prompt_token_ids(300); }},
      {"token id -1", [](auto& r) { r.add_prompt_token_ids(-1); }},
      {"stop_token_ids", [](auto& r) { r.add_stop_token_ids(999); }},
  };
  for (const auto& c : cases) {
    v1::GenerateRequest request = GreedyRequest(prompt, 4);
    c.edit(request);
    v1::GenerateResponse response;
    const grpc::Status status = Generate(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.field << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
    // Streaming answers the same way.
    grpc::ClientContext context;
    auto reader = stub_->GenerateStream(&context, request);
    v1::GenerateStreamResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
  }
}

TEST_F(ServerE2E, TextNeedsATokenizer) {
  v1::GenerateRequest request;
  request.set_prompt("hello");
  v1::GenerateResponse response;
  EXPECT_EQ(Generate(request, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::GenerateRequest with_stop = GreedyRequest({1, 2}, 4);
  with_stop.add_stop("\n");
  EXPECT_EQ(Generate(with_stop, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext context;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello");
  v1::TokenizeResponse ids;
  EXPECT_EQ(stub_->Tokenize(&context, tokenize, &ids).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ServerE2E, RequestThatCanNeverFitIsResourceExhausted) {
  // 64 blocks of 16 = 1024 tokens of KV, but the model allows 512: use a smaller server.
  auto small = StartServer({"--num-kv-blocks", "4", "--block-size", "16"});
  auto stub = v1::Inference::NewStub(small->Channel());
  grpc::ClientContext context;
  v1::GenerateResponse response;
  const grpc::Status status = stub->Generate(&context, GreedyRequest({1, 2, 3}, 100), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("never fit"));
  EXPECT_EQ(small->Stop(SIGTERM), 0);
}

TEST_F(ServerE2E, QueueOverflowIsResourceExhausted) {
  // The demo model, so the first request is still generating (400 tokens take far longer than
  // sending five more calls) when the others arrive: one runs, one waits, the rest are refused.
  auto small = StartServer({"--max-num-seqs", "1", "--max-queue", "1", "--num-kv-blocks", "64"},
                           std::string(ROPEWIRE_SOURCE_DIR) + "/models/demo");
  auto stub = v1::Inference::NewStub(small->Channel());
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateStreamResponse>>> readers;
  int exhausted = 0, ok = 0;
  for (int i = 0; i < 6; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(
        stub->GenerateStream(contexts.back().get(), GreedyRequest({0, 1, 2, 3}, 400)));
    if (i == 0) {
      v1::GenerateStreamResponse first;
      ASSERT_TRUE(readers.back()->Read(&first));  // the first is running before the others come
    }
  }
  for (auto& reader : readers) {
    v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
    }
    const grpc::Status status = reader->Finish();
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      EXPECT_THAT(status.error_message(), HasSubstr("queue is full"));
    } else {
      EXPECT_TRUE(status.ok()) << status.error_message();
      ++ok;
    }
  }
  EXPECT_GE(exhausted, 1);
  EXPECT_GE(ok, 2);
  EXPECT_EQ(small->Stop(SIGTERM), 0);
}

TEST_F(ServerE2E, ManyConcurrentStreamsWithRandomCancellations) {
  constexpr int kClients = 64;
  std::atomic<int> unexpected{0}, cancelled{0}, completed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      std::mt19937 rng(i);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 120s);
      v1::GenerateRequest request =
          GreedyRequest({1, 2, 3, static_cast<int32_t>(10 + i)}, 20 + i % 30);
      if (i % 2) {
        request.set_temperature(0.8f);
        request.set_seed(i);
      }
      auto reader = stub_->GenerateStream(&context, request);
      const int cancel_after = (rng() % 3 == 0) ? static_cast<int>(rng() % 5) : -1;
      v1::GenerateStreamResponse message;
      int received = 0;
      while (reader->Read(&message)) {
        if (received++ == cancel_after) context.TryCancel();
      }
      const grpc::Status status = reader->Finish();
      if (status.ok()) {
        ++completed;
      } else if (status.error_code() == grpc::StatusCode::CANCELLED) {
        ++cancelled;
      } else {
        ++unexpected;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(completed + cancelled, kClients);
  EXPECT_GT(completed.load(), 0);
  v1::ServerStats stats;
  EXPECT_TRUE(WaitIdle(*stub_, &stats)) << stats.DebugString();
}

}  // namespace
}  // namespace ropewire::testing
