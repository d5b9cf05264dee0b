// Operating the real server: /metrics (parsed, with the right types, moving by what known
// requests add), /healthz and /readyz through a drain, JSON access-log lines with hostile request
// ids, the flood of a queue of one, malformed request messages, and an over-long text prompt.
#include <signal.h>

#include <atomic>
#include <sstream>
#include <thread>

#include <grpcpp/impl/client_unary_call.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/common/fixtures.h"
#include "tests/common/prometheus_text.h"
#include "tests/server/http_get.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

v1::GenerateRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_token_ids(id);
  r.set_max_tokens(max_tokens);
  r.set_temperature(0.0f);
  r.set_ignore_eos(true);
  return r;
}

std::unique_ptr<ServerProcess> Start(const std::vector<std::string>& extra,
                                     const std::string& model = FixtureDir("llama_gqa")) {
  auto server = std::make_unique<ServerProcess>();
  std::vector<std::string> args = {"--model", model, "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  EXPECT_TRUE(server->Start(args)) << server->log();
  EXPECT_TRUE(server->WaitServing()) << server->log();
  return server;
}

PromScrape Scrape(int port) {
  auto response = HttpGet(port, "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return PromScrape();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->content_type, HasSubstr("text/plain; version=0.0.4"));
  auto scrape = PromScrape::Parse(response->body);
  EXPECT_TRUE(scrape.ok()) << scrape.status() << "\n" << response->body;
  return scrape.ok() ? *scrape : PromScrape();
}

TEST(Metrics, MoveByWhatKnownRequestsAdd) {
  auto server = Start({"--metrics-port", "0", "--num-kv-blocks", "64"});
  const int port = server->MetricsPort();
  ASSERT_GT(port, 0) << server->log();
  // Idle: the whole cache free, nothing running.
  const PromScrape before = Scrape(port);
  EXPECT_EQ(before.Value("ropewire_kv_cache_blocks"), 64);
  EXPECT_EQ(before.Value("ropewire_kv_cache_free_blocks"), 64);
  EXPECT_EQ(before.Value("ropewire_kv_cache_usage_perc"), 0);
  EXPECT_EQ(before.Value("ropewire_num_requests_running"), 0);

  auto stub = v1::Inference::NewStub(server->Channel());
  for (int i = 0; i < 3; ++i) {  // 3 unary calls: 5 prompt tokens, 6 generated each
    grpc::ClientContext context;
    v1::GenerateResponse response;
    ASSERT_TRUE(stub->Generate(&context, Greedy({1, 2, 3, 4, 5}, 6), &response).ok());
  }
  {  // 1 stream: 4 prompt tokens, 10 generated
    grpc::ClientContext context;
    auto reader = stub->GenerateStream(&context, Greedy({9, 8, 7, 6}, 10));
    v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
    }
    const grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  }
  {  // 1 refusal
    grpc::ClientContext context;
    v1::GenerateResponse response;
    EXPECT_EQ(stub->Generate(&context, Greedy({1, 2}, 4000), &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  v1::ServerStats stats;
  ASSERT_TRUE(WaitIdle(*stub, &stats));
  const PromScrape after = Scrape(port);
  const auto delta = [&](const std::string& name,
                         const std::map<std::string, std::string>& labels = {}) {
    return after.ValueOr0(name, labels) - before.ValueOr0(name, labels);
  };
  EXPECT_EQ(delta("ropewire_requests_total",
                  {{"method", "Generate"}, {"code", "OK"}, {"finished_reason", "length"}}),
            3);
  EXPECT_EQ(delta("ropewire_requests_total",
                  {{"method", "GenerateStream"}, {"code", "OK"}, {"finished_reason", "length"}}),
            1);
  EXPECT_EQ(
      delta("ropewire_requests_total",
            {{"method", "Generate"}, {"code", "INVALID_ARGUMENT"}, {"finished_reason", "none"}}),
      1);
  EXPECT_EQ(delta("ropewire_generation_tokens_total"), 3 * 6 + 10);
  EXPECT_EQ(delta("ropewire_prompt_tokens_total"), 3 * 5 + 4);
  EXPECT_EQ(delta("ropewire_time_to_first_token_seconds_count"), 4);
  EXPECT_EQ(delta("ropewire_inter_token_latency_seconds_count"), 3 * 5 + 9);
  EXPECT_EQ(delta("ropewire_e2e_request_latency_seconds_count"), 4);
  EXPECT_EQ(delta("ropewire_request_queue_time_seconds_count"), 4);
  EXPECT_EQ(delta("ropewire_request_prompt_tokens_sum"), 3 * 5 + 4);
  EXPECT_EQ(delta("ropewire_request_generation_tokens_sum"), 3 * 6 + 10);
  // Every step is timed once, and the steps fed every prompt token and every decode input.
  EXPECT_EQ(delta("ropewire_step_duration_seconds_count"), delta("ropewire_steps_total"));
  EXPECT_EQ(delta("ropewire_model_step_seconds_count"), delta("ropewire_steps_total"));
  EXPECT_GE(delta("ropewire_step_tokens_sum"), 3 * (5 + 5) + (4 + 9));
  EXPECT_GT(delta("ropewire_prefix_cache_queries_total"), 0);
  EXPECT_EQ(after.Value("ropewire_kv_cache_free_blocks"), 64);
  stub.reset();  // the drain waits for clients to close their connections
  EXPECT_EQ(server->Stop(SIGTERM), 0) << server->log();
}

TEST(HealthEndpoints, ReadyzFollowsTheDrain) {
  auto server = Start({"--metrics-port", "0", "--drain-delay-seconds", "3"});
  const int port = server->MetricsPort();
  ASSERT_GT(port, 0) << server->log();
  EXPECT_EQ(HttpGet(port, "/healthz")->status, 200);
  auto ready = HttpGet(port, "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "serving\n");
  EXPECT_EQ(HttpGet(port, "/nothing-here")->status, 404);
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForLog("draining: health NOT_SERVING"));
  // Draining, still alive: not ready, but healthy.
  ready = HttpGet(port, "/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "draining\n");
  EXPECT_EQ(HttpGet(port, "/healthz")->status, 200);
  EXPECT_EQ(server->Stop(0, 30000), 0) << server->log();
}

// Lines of the server's output that are access-log lines, parsed.
std::vector<nlohmann::json> AccessLines(const std::string& log) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded() && j.value("log", "") == "access") lines.push_back(j);
  }
  return lines;
}

TEST(AccessLog, JsonLinesEscapeHostileRequestIds) {
  auto server = Start({"--log-format", "json"});
  const std::string hostile =
      "x\n{\"log\":\"access\",\"request_id\":\"forged\"}\r\n2030-01-01 info forged\t\"\\ \u2028 "
      "end";
  {  // the calls' channel and contexts end here: a drain waits for connections to close
    auto stub = v1::Inference::NewStub(server->Channel());
    v1::GenerateRequest request = Greedy({1, 2, 3}, 3);
    request.set_request_id(hostile);
    grpc::ClientContext context;
    v1::GenerateResponse response;
    ASSERT_TRUE(stub->Generate(&context, request, &response).ok());
    EXPECT_EQ(response.request_id(), hostile);
    // Over the length limit: refused, and logged too.
    request.set_request_id(std::string(300, 'z'));
    grpc::ClientContext long_context;
    const grpc::Status too_long = stub->Generate(&long_context, request, &response);
    EXPECT_EQ(too_long.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(too_long.error_message(), HasSubstr("request_id: at most 256 bytes"));
  }
  EXPECT_TRUE(server->WaitForLog("INVALID_ARGUMENT"));
  EXPECT_EQ(server->Stop(SIGTERM), 0);

  // Every line of the output parses as JSON; one access line per call, the hostile id intact.
  const std::vector<nlohmann::json> access = AccessLines(server->log());
  int hostile_lines = 0, refused_lines = 0;
  for (const nlohmann::json& line : access) {
    EXPECT_TRUE(line.contains("time") && line.contains("peer") && line.contains("e2e_ms"));
    EXPECT_NE(line.value("request_id", ""), "forged");
    if (line.value("request_id", "") == hostile) {
      ++hostile_lines;
      EXPECT_EQ(line["method"], "Generate");
      EXPECT_EQ(line["code"], "OK");
      EXPECT_EQ(line["finish_reason"], "length");
      EXPECT_EQ(line["prompt_tokens"], 3);
      EXPECT_EQ(line["completion_tokens"], 3);
      EXPECT_TRUE(line["ttft_ms"].is_number());
      EXPECT_TRUE(line["queue_ms"].is_number());
    }
    if (line.value("code", "") == "INVALID_ARGUMENT") ++refused_lines;
  }
  EXPECT_EQ(hostile_lines, 1) << server->log();
  EXPECT_EQ(refused_lines, 1) << server->log();
}

TEST(AccessLog, TextLinesCannotBeForged) {
  auto server = Start({});
  {
    auto stub = v1::Inference::NewStub(server->Channel());
    v1::GenerateRequest request = Greedy({1, 2, 3}, 2);
    request.set_request_id("a\n2030-01-01T00:00:00.000 info access method=Generate forged");
    grpc::ClientContext context;
    v1::GenerateResponse response;
    ASSERT_TRUE(stub->Generate(&context, request, &response).ok());
  }
  ASSERT_TRUE(server->WaitForLog("request_id=\"a\\n2030-01-01T00:00:00.000 info access"));
  EXPECT_EQ(server->Stop(SIGTERM), 0);
  std::istringstream in(server->log());
  std::string line;
  while (std::getline(in, line)) EXPECT_NE(line.rfind("2030-01-01", 0), 0u) << line;
}

// The engine's queue check reads a count refreshed after each step, so some calls get past it
// and are refused by the scheduler instead; both refusals must reach the client as
// RESOURCE_EXHAUSTED.
TEST(StatusCodes, FloodOfAQueueOfOneEndsOkOrResourceExhausted) {
  auto server = Start({"--max-queue", "1", "--max-num-seqs", "1", "--num-kv-blocks", "64"});
  constexpr int kCalls = 64;
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      auto stub = v1::Inference::NewStub(server->Channel());
      while (!go.load()) std::this_thread::yield();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 120s);
      v1::GenerateResponse response;
      const grpc::Status status =
          stub->Generate(&context, Greedy({1, 2, 3, 4 + i % 50}, 8), &response);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        EXPECT_THAT(status.error_message(), HasSubstr("queue is full"));
        ++exhausted;
      } else {
        ADD_FAILURE() << status.error_code() << ": " << status.error_message();
        ++other;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + exhausted, kCalls);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(exhausted.load(), 1);
  EXPECT_THAT(server->log(), ::testing::Not(HasSubstr("code=INTERNAL")));
  EXPECT_EQ(server->Stop(SIGTERM), 0);
}

// A raw call with `bytes` as the request message.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  const grpc::internal::RpcMethod rpc(method.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(), rpc, &context, request, &response);
}

grpc::Status RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& bytes) {
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), message;
  grpc::ClientContext context;
  const grpc::internal::RpcMethod rpc("/ropewire.v1.Inference/GenerateStream",
                                      grpc::internal::RpcMethod::SERVER_STREAMING);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel.get(), rpc, &context,
                                                                    request));
  while (reader->Read(&message)) {
  }
  return reader->Finish();
}

TEST(StatusCodes, MalformedMessagesAreInvalidArgumentNamingTheProblem) {
  auto server = Start({}, SourceDir() + "/models/demo");
  // prompt (field 2) holding bytes that are not UTF-8.
  const std::string bad_prompt = std::string(
      "\x12\x04"
      "ab\xff\xfe",
      6);
  for (const grpc::Status& status :
       {RawUnary(server->Channel(), "/ropewire.v1.Inference/Generate", bad_prompt),
        RawStream(server->Channel(), bad_prompt)}) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("`prompt` is not valid UTF-8"));
  }
  const grpc::Status truncated = RawUnary(server->Channel(), "/ropewire.v1.Inference/Generate",
                                          std::string("\x1a\x09\x01\x02", 4));
  EXPECT_EQ(truncated.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(truncated.error_message(), HasSubstr("`prompt_token_ids` at byte 0 runs past"));
  const grpc::Status tokenize = RawUnary(server->Channel(), "/ropewire.v1.Inference/Tokenize",
                                         std::string("\x0a\x01\x80", 3));
  EXPECT_EQ(tokenize.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(tokenize.error_message(), HasSubstr("`text` is not valid UTF-8"));
  // A well-formed message through the same raw path is served.
  v1::GenerateRequest good = Greedy({1, 2}, 2);
  EXPECT_TRUE(
      RawUnary(server->Channel(), "/ropewire.v1.Inference/Generate", good.SerializeAsString())
          .ok());
  EXPECT_EQ(server->Stop(SIGTERM), 0);
}

TEST(StatusCodes, OverlongTextPromptIsRefusedBeforeTokenizing) {
  auto server = Start({}, SourceDir() + "/models/demo");
  {
    auto stub = v1::Inference::NewStub(server->Channel());
    v1::GenerateRequest request;
    request.set_prompt(std::string(8 << 20, 'a'));
    grpc::ClientContext context;
    v1::GenerateResponse response;
    const grpc::Status status = stub->Generate(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    // Counted in bytes: the tokenizer never ran (its refusal would count tokens).
    EXPECT_THAT(status.error_message(),
                HasSubstr("prompt: 8388608 bytes is more text than the model's maximum length"));
  }
  EXPECT_EQ(server->Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ropewire::testing
