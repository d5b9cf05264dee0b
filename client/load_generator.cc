#include "client/load_generator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/rpc_util.h"
#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::client {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Collects finished requests and tracks how many are in flight; reactors report here from
// gRPC's callback threads.
class RunState {
 public:
  explicit RunState(Clock::time_point start) : start_(start) {}

  Clock::time_point start() const { return start_; }
  void Started() {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
  }
  void Finished(RequestRecord record) {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(record));
    --in_flight_;
    last_finish_ = Clock::now();
    changed_.notify_all();
  }
  // Waits until fewer than `limit` requests are in flight or `until` passes; false on timeout.
  bool WaitBelow(int limit, Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_until(lock, until, [&] { return in_flight_ < limit; });
  }
  void WaitAllDone() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return in_flight_ == 0; });
  }
  LoadResult TakeResult() {
    std::lock_guard<std::mutex> lock(mu_);
    LoadResult result;
    result.records = std::move(records_);
    result.duration_s = result.records.empty() ? 0 : SecondsBetween(start_, last_finish_);
    return result;
  }

 private:
  const Clock::time_point start_;
  std::mutex mu_;
  std::condition_variable changed_;
  int in_flight_ = 0;
  std::vector<RequestRecord> records_;
  Clock::time_point last_finish_;
};

// One GenerateStream call; deletes itself when the call is done.
class StreamCall : public grpc::ClientReadReactor<v1::GenerateStreamResponse> {
 public:
  StreamCall(RunState* run, v1::Inference::Stub* stub, v1::GenerateRequest request,
             const LoadOptions& options)
      : run_(run), request_(std::move(request)) {
    SetDeadline(&context_, options.timeout_s);
    Authorize(&context_, options.connection);
    record_.prompt_tokens = request_.prompt_token_ids_size();
    sent_ = Clock::now();
    record_.start_s = SecondsBetween(run_->start(), sent_);
    stub->async()->GenerateStream(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    const Clock::time_point now = Clock::now();
    const int tokens = response_.token_ids_size();
    if (tokens > 0) {
      if (record_.messages == 0) {
        record_.ttft_s = SecondsBetween(sent_, now);
      } else {
        record_.gaps_s.push_back(SecondsBetween(last_message_, now));
        record_.gap_tokens.push_back(tokens);
      }
      last_message_ = now;
      ++record_.messages;
      record_.output_tokens += tokens;
    }
    if (response_.has_usage())
      record_.prompt_tokens = static_cast<int>(response_.usage().prompt_tokens());
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.e2e_s = SecondsBetween(sent_, Clock::now());
    record_.code = status.error_code();
    record_.error_message = status.error_message();
    RunState* run = run_;
    RequestRecord record = std::move(record_);
    delete this;
    run->Finished(std::move(record));  // last: the run may end as soon as this returns
  }

 private:
  RunState* const run_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateStreamResponse response_;
  RequestRecord record_;
  Clock::time_point sent_;
  Clock::time_point last_message_;
};

// One unary Generate call: the first token arrives with the last, so TTFT equals end-to-end.
class UnaryCall {
 public:
  static void Start(RunState* run, v1::Inference::Stub* stub, v1::GenerateRequest request,
                    const LoadOptions& options) {
    auto* call = new UnaryCall(run, std::move(request));
    SetDeadline(&call->context_, options.timeout_s);
    Authorize(&call->context_, options.connection);
    stub->async()->Generate(&call->context_, &call->request_, &call->response_,
                            [call](grpc::Status status) { call->Done(status); });
  }

 private:
  UnaryCall(RunState* run, v1::GenerateRequest request)
      : run_(run), request_(std::move(request)), sent_(Clock::now()) {}

  void Done(const grpc::Status& status) {
    RequestRecord record;
    record.streamed = false;
    record.start_s = SecondsBetween(run_->start(), sent_);
    record.e2e_s = SecondsBetween(sent_, Clock::now());
    record.code = status.error_code();
    record.error_message = status.error_message();
    record.prompt_tokens = static_cast<int>(response_.usage().prompt_tokens());
    record.output_tokens = response_.token_ids_size();
    if (record.output_tokens > 0) {
      record.ttft_s = record.e2e_s;
      record.messages = 1;
    }
    RunState* run = run_;
    delete this;
    run->Finished(std::move(record));
  }

  RunState* const run_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  Clock::time_point sent_;
};

// Draws each request's prompt and output length (and the prompt's ids) from one seeded stream,
// so a run is reproducible.
class RequestFactory {
 public:
  explicit RequestFactory(const LoadOptions& options) : options_(options), rng_(options.seed) {}

  v1::GenerateRequest Next() {
    v1::GenerateRequest request = options_.base_request;
    int output_len = options_.output_len.Sample(rng_);
    if (!options_.prompt_text.empty()) {
      request.set_prompt(options_.prompt_text);
    } else {
      int prompt_len = options_.prompt_len.Sample(rng_);
      if (options_.max_model_len > 1) {
        // Keep the request servable: shorten the output first, then the prompt.
        output_len = std::min(output_len, options_.max_model_len - 1);
        prompt_len = std::min(prompt_len, options_.max_model_len - output_len);
      }
      std::uniform_int_distribution<int32_t> token(0, std::max(1, options_.vocab_size) - 1);
      for (int i = 0; i < prompt_len; ++i) request.add_prompt_token_ids(token(rng_));
    }
    request.set_max_tokens(static_cast<uint32_t>(output_len));
    return request;
  }

  // Seconds until the next Poisson arrival.
  double NextGap() { return std::exponential_distribution<double>(options_.rate)(rng_); }

 private:
  const LoadOptions& options_;
  std::mt19937_64 rng_;
};

absl::StatusOr<std::vector<std::unique_ptr<v1::Inference::Stub>>> ConnectAll(
    const LoadOptions& options) {
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs;
  for (int i = 0; i < options.connections; ++i) {
    auto channel = MakeChannel(options.connection, i);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", options.connection.target,
                                                 " (connection ", i + 1, " of ",
                                                 options.connections, ")"));
    }
    stubs.push_back(v1::Inference::NewStub(channel));
  }
  return stubs;
}

}  // namespace

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options) {
  auto stubs = ConnectAll(options);
  if (!stubs.ok()) return stubs.status();
  RequestFactory factory(options);
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      options.duration_s > 0
          ? start + std::chrono::microseconds(static_cast<int64_t>(options.duration_s * 1e6))
          : Clock::time_point::max();
  RunState run(start);
  Clock::time_point next_arrival = start;
  for (int64_t issued = 0; options.requests == 0 || issued < options.requests; ++issued) {
    if (options.rate > 0) {
      next_arrival += std::chrono::microseconds(static_cast<int64_t>(factory.NextGap() * 1e6));
      if (next_arrival >= end) break;
      std::this_thread::sleep_until(next_arrival);
    } else if (!run.WaitBelow(options.concurrency, end)) {
      break;
    }
    if (Clock::now() >= end) break;
    v1::GenerateRequest request = factory.Next();
    v1::Inference::Stub* stub = (*stubs)[issued % stubs->size()].get();
    run.Started();
    if (options.stream) {
      new StreamCall(&run, stub, std::move(request), options);
    } else {
      UnaryCall::Start(&run, stub, std::move(request), options);
    }
  }
  run.WaitAllDone();
  return run.TakeResult();
}

}  // namespace ropewire::client
