#include "tests/deploy/stream_load.h"

#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::testing {
namespace {

CallRecord OneCall(v1::Inference::Stub& stub, const v1::GenerateRequest& request, int index,
                   std::chrono::seconds timeout) {
  CallRecord record;
  record.request_index = index;
  record.start = std::chrono::steady_clock::now();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = stub.GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  bool first = true;
  while (reader->Read(&message)) {
    if (first) {
      first = false;
      auto it = context.GetServerInitialMetadata().find("ropewire-replica");
      if (it != context.GetServerInitialMetadata().end())
        record.replica.assign(it->second.data(), it->second.size());
    }
    record.text += message.text();
  }
  const grpc::Status status = reader->Finish();
  record.end = std::chrono::steady_clock::now();
  record.code = status.error_code();
  record.error = status.error_message();
  return record;
}

}  // namespace

std::vector<CallRecord> RunStreamLoad(const LoadPlan& plan) {
  // One channel, hence one HTTP/2 connection, for every worker.
  auto channel = grpc::CreateChannel(plan.target, grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  const auto started = std::chrono::steady_clock::now();
  const auto hard_end = started + plan.max_duration;
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<CallRecord> records;
  auto keep_going = [&](int issued) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= hard_end) return false;
    if (issued < plan.min_calls) return true;
    const int64_t until = plan.run_until_ns ? plan.run_until_ns->load() : 0;
    return until > 0 && now.time_since_epoch().count() < until;
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < plan.concurrency; ++w) {
    workers.emplace_back([&] {
      for (int i = next.fetch_add(1); keep_going(i); i = next.fetch_add(1)) {
        const int index = i % static_cast<int>(plan.requests.size());
        CallRecord record = OneCall(*stub, plan.requests[index], index, plan.call_timeout);
        int finished;
        {
          std::lock_guard<std::mutex> lock(mu);
          records.push_back(std::move(record));
          finished = static_cast<int>(records.size());
        }
        if (plan.on_call_finished) plan.on_call_finished(finished);
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return records;
}

std::vector<v1::GenerateRequest> GreedyRequests(int count, int max_tokens) {
  static const char* const kOpenings[] = {"And the LORD said",   "In the beginning",
                                          "And God said",        "Blessed are the",
                                          "And it came to pass", "The LORD is my"};
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < count; ++i) {
    v1::GenerateRequest request;
    request.set_prompt(absl::StrCat(kOpenings[i % 6], " ", i + 1));
    request.set_max_tokens(max_tokens);
    request.set_temperature(0.0f);
    requests.push_back(std::move(request));
  }
  return requests;
}

}  // namespace ropewire::testing
