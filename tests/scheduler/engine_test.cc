// The engine over the real model on a fixture: batch invariance (each request yields what it
// yields alone, whatever shares its steps, however its prompt is chunked, through preemptions
// and prefix-cache hits), seeded sampling, aborts, deadlines, validation and graceful stop.
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/executor.h"
#include "scheduler/engine.h"
#include "tests/common/fixtures.h"

namespace ropewire::scheduler {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class CollectingSink : public OutputSink {
 public:
  explicit CollectingSink(int stop_after = -1) : stop_after_(stop_after) {}
  bool OnOutput(const RequestOutput& out) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    for (const auto& t : out.new_tokens) tokens_.push_back(t.token);
    if (out.finished) {
      reason_ = out.reason;
      status_ = out.status;
      queued_ = out.first_scheduled.has_value();
      done_ = true;
      cv_.notify_all();
    }
    return stop_after_ < 0 || static_cast<int>(tokens_.size()) < stop_after_;
  }
  bool Wait(std::chrono::milliseconds timeout = 60s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  std::vector<int32_t> tokens() {
    std::lock_guard<std::mutex> l(mu_);
    return tokens_;
  }
  FinishReason reason() {
    std::lock_guard<std::mutex> l(mu_);
    return reason_;
  }
  absl::Status status() {
    std::lock_guard<std::mutex> l(mu_);
    return status_;
  }
  std::string error() { return std::string(status().message()); }
  // Whether the final output said when a step first scheduled the request.
  bool was_scheduled() {
    std::lock_guard<std::mutex> l(mu_);
    return queued_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int32_t> tokens_;
  FinishReason reason_ = FinishReason::kNone;
  absl::Status status_;
  bool queued_ = false;
  bool done_ = false;
  int calls_ = 0;
  int stop_after_;
};

std::unique_ptr<Engine> MakeEngine(int num_blocks, int block_size, SchedulerConfig config) {
  model::ExecutorOptions options;
  options.num_blocks = num_blocks;
  options.block_size = block_size;
  auto runner = model::LoadExecutor(ropewire::testing::FixtureDir("llama_gqa"), options);
  EXPECT_TRUE(runner.ok()) << runner.status();
  EngineConfig engine_config;
  engine_config.scheduler = config;
  auto engine = Engine::Create(std::move(*runner), engine_config);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

// 24 requests with different prompt and output lengths; prompts share prefixes so the prefix
// cache gets hits.
std::vector<GenerationRequest> Workload(bool sampled) {
  std::mt19937 rng(42);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<>(lo, hi)(rng); };
  std::vector<int32_t> shared;
  for (int i = 0; i < 40; ++i) shared.push_back(uniform(3, 255));
  std::vector<GenerationRequest> requests;
  for (int i = 0; i < 24; ++i) {
    GenerationRequest r;
    r.request_id = "req-" + std::to_string(i);
    r.prompt.assign(shared.begin(), shared.begin() + uniform(1, 40));
    for (int extra = uniform(0, 12); extra > 0; --extra) r.prompt.push_back(uniform(3, 255));
    r.max_tokens = uniform(1, 40);
    r.ignore_eos = true;
    r.sampling.temperature = 0.0f;
    if (sampled) {
      r.sampling.temperature = 0.9f;
      r.sampling.top_p = 0.95f;
      r.sampling.top_k = 50;
      r.sampling.seed = 1000 + i;
    }
    requests.push_back(r);
  }
  return requests;
}

std::vector<std::vector<int32_t>> RunAll(Engine& engine,
                                         const std::vector<GenerationRequest>& requests) {
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (const auto& r : requests) {
    sinks.push_back(std::make_shared<CollectingSink>());
    EXPECT_TRUE(engine.Submit(r, sinks.back()).ok());
  }
  std::vector<std::vector<int32_t>> outputs;
  for (auto& sink : sinks) {
    EXPECT_TRUE(sink->Wait());
    EXPECT_EQ(sink->reason(), FinishReason::kLength) << sink->error();
    outputs.push_back(sink->tokens());
  }
  return outputs;
}

std::vector<std::vector<int32_t>> RunAlone(const std::vector<GenerationRequest>& requests) {
  auto engine = MakeEngine(512, 16, SchedulerConfig{});
  std::vector<std::vector<int32_t>> outputs;
  for (const auto& r : requests) outputs.push_back(RunAll(*engine, {r})[0]);
  return outputs;
}

// Polls the engine's published state (not a timing assumption: it waits for the state itself).
bool WaitForFreeBlocks(Engine& engine) {
  for (int i = 0; i < 2000; ++i) {
    const EngineStats s = engine.Stats();
    if (s.num_free_blocks == s.num_blocks && s.num_running == 0 && s.num_waiting == 0) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

void ExpectBatchInvariance(bool sampled) {
  const auto requests = Workload(sampled);
  const auto alone = RunAlone(requests);
  struct Variant {
    const char* name;
    int num_blocks, block_size, chunk;
    bool static_batching;
  };
  for (const Variant& v :
       {Variant{"chunk 512", 512, 16, 512, false}, Variant{"chunk 16", 512, 16, 16, false},
        Variant{"chunk 1", 512, 16, 1, false}, Variant{"tight KV (preemptions)", 14, 8, 64, false},
        Variant{"static batches", 64, 16, 512, true}}) {
    SchedulerConfig config;
    config.max_num_batched_tokens = v.chunk;
    config.static_batching = v.static_batching;
    config.max_model_len = v.static_batching ? 96 : 0;
    auto engine = MakeEngine(v.num_blocks, v.block_size, config);
    const auto batched = RunAll(*engine, requests);
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_EQ(batched[i], alone[i]) << v.name << ", request " << i;
    }
    const EngineStats stats = engine->Stats();
    if (std::string(v.name).find("preemptions") != std::string::npos) {
      EXPECT_GT(stats.preemptions, 0) << "the tight cache was meant to force preemptions";
    }
    if (!v.static_batching) {
      EXPECT_GT(stats.prefix_hit_tokens, 0) << v.name;
    }
    EXPECT_TRUE(WaitForFreeBlocks(*engine)) << v.name << ": blocks leaked";
  }
}

TEST(EngineBatchInvariance, GreedyRequestsYieldWhatTheyYieldAlone) { ExpectBatchInvariance(false); }

TEST(EngineBatchInvariance, SeededSamplingIsReproducibleRegardlessOfBatch) {
  ExpectBatchInvariance(true);
}

TEST(Engine, AbortFreesBlocks) {
  auto engine = MakeEngine(64, 16, SchedulerConfig{});
  GenerationRequest r = Workload(false)[0];
  r.max_tokens = 400;
  auto sink = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(r, sink).ok());
  engine->Abort(r.request_id);
  ASSERT_TRUE(sink->Wait());
  EXPECT_EQ(sink->reason(), FinishReason::kCancelled);
  EXPECT_TRUE(WaitForFreeBlocks(*engine));
}

TEST(Engine, DeadlineFreesBlocks) {
  auto engine = MakeEngine(64, 16, SchedulerConfig{});
  GenerationRequest r = Workload(false)[0];
  r.max_tokens = 480;
  // The tiny model makes a token in well under a millisecond on any machine, but 480 of them
  // take longer than 2 ms; an already-expired deadline ends a request before its first step.
  for (auto deadline : {Clock::now() + 2ms, Clock::now() - 1ms}) {
    r.deadline = deadline;
    auto sink = std::make_shared<CollectingSink>();
    ASSERT_TRUE(engine->Submit(r, sink).ok());
    ASSERT_TRUE(sink->Wait());
    EXPECT_EQ(sink->reason(), FinishReason::kDeadline);
    EXPECT_LT(sink->tokens().size(), 480u);
    EXPECT_TRUE(WaitForFreeBlocks(*engine));
  }
}

TEST(Engine, SinkCanEndARequest) {
  auto engine = MakeEngine(64, 16, SchedulerConfig{});
  GenerationRequest r = Workload(false)[0];
  r.max_tokens = 30;
  auto sink = std::make_shared<CollectingSink>(/*stop_after=*/5);
  ASSERT_TRUE(engine->Submit(r, sink).ok());
  ASSERT_TRUE(sink->Wait());
  EXPECT_EQ(sink->reason(), FinishReason::kStopString);
  EXPECT_EQ(sink->tokens().size(), 5u);
  EXPECT_TRUE(WaitForFreeBlocks(*engine));
}

TEST(Engine, RejectsBadRequestsAtSubmission) {
  SchedulerConfig config;
  config.max_waiting = 1000;
  auto engine = MakeEngine(8, 16, config);  // 128 tokens of KV; the model allows 512
  auto sink = std::make_shared<CollectingSink>();
  GenerationRequest r = Workload(false)[0];

  GenerationRequest bad_token = r;
  bad_token.prompt.push_back(256);
  absl::Status s = engine->Submit(bad_token, sink);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("token id 256"));

  GenerationRequest bad_param = r;
  bad_param.sampling.top_p = 1.5f;
  s = engine->Submit(bad_param, sink);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("top_p"));

  GenerationRequest too_long = r;
  too_long.max_tokens = 600;
  s = engine->Submit(too_long, sink);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("maximum model length of 512"));

  GenerationRequest never_fits = r;
  never_fits.max_tokens = 200;
  s = engine->Submit(never_fits, sink);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("never fit"));

  GenerationRequest live = r;
  live.max_tokens = 60;
  ASSERT_TRUE(engine->Submit(live, sink).ok());
  s = engine->Submit(live, std::make_shared<CollectingSink>());
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(sink->Wait());
}

// Submit() checks a queue count published after each step, so between a step's intake and its
// end it can accept a request the scheduler then refuses. Every request of a flood on a queue of
// one must still end either generated or RESOURCE_EXHAUSTED (from Submit() or in the output's
// status), never with an error that lost its code.
TEST(Engine, FloodOnAQueueOfOneEndsEveryRequestDoneOrExhausted) {
  SchedulerConfig config;
  config.max_waiting = 1;
  config.max_num_seqs = 1;
  auto engine = MakeEngine(64, 16, config);
  constexpr int kRequests = 64;
  std::vector<std::shared_ptr<CollectingSink>> sinks(kRequests);
  std::vector<absl::Status> submitted(kRequests);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += 4) {
        GenerationRequest r = Workload(false)[i % 24];
        r.request_id = "flood-" + std::to_string(i);
        r.max_tokens = 4;
        sinks[i] = std::make_shared<CollectingSink>();
        submitted[i] = engine->Submit(r, sinks[i]);
      }
    });
  }
  for (auto& t : threads) t.join();
  int generated = 0, refused_at_submit = 0, refused_by_scheduler = 0;
  for (int i = 0; i < kRequests; ++i) {
    if (!submitted[i].ok()) {
      EXPECT_EQ(submitted[i].code(), absl::StatusCode::kResourceExhausted) << submitted[i];
      ++refused_at_submit;
      continue;
    }
    ASSERT_TRUE(sinks[i]->Wait());
    if (sinks[i]->reason() == FinishReason::kLength) {
      EXPECT_TRUE(sinks[i]->status().ok());
      EXPECT_TRUE(sinks[i]->was_scheduled());
      ++generated;
    } else {
      EXPECT_EQ(sinks[i]->reason(), FinishReason::kError);
      EXPECT_EQ(sinks[i]->status().code(), absl::StatusCode::kResourceExhausted)
          << sinks[i]->status();
      EXPECT_THAT(sinks[i]->error(), HasSubstr("queue is full"));
      ++refused_by_scheduler;
    }
  }
  EXPECT_GE(generated, 1);
  EXPECT_EQ(generated + refused_at_submit + refused_by_scheduler, kRequests);
  EXPECT_TRUE(WaitForFreeBlocks(*engine));
}

TEST(Engine, GracefulStopFinishesInFlightWork) {
  auto engine = MakeEngine(64, 16, SchedulerConfig{});
  GenerationRequest r = Workload(false)[3];
  r.max_tokens = 20;
  auto sink = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(r, sink).ok());
  engine->Stop(30s);
  EXPECT_EQ(sink->reason(), FinishReason::kLength);
  EXPECT_EQ(sink->tokens().size(), 20u);
  EXPECT_EQ(engine->Submit(r, sink).code(), absl::StatusCode::kUnavailable);
}

TEST(Engine, StopWithoutGraceCancels) {
  auto engine = MakeEngine(64, 16, SchedulerConfig{});
  GenerationRequest r = Workload(false)[3];
  r.max_tokens = 400;
  auto sink = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine->Submit(r, sink).ok());
  engine->Stop(0ms);
  ASSERT_TRUE(sink->Wait(1s));
  EXPECT_EQ(sink->reason(), FinishReason::kCancelled);
}

TEST(Engine, ContextShiftGeneratesPastTheModelLength) {
  SchedulerConfig config;
  config.max_model_len = 64;
  config.context_shift_sink_tokens = 16;
  auto engine = MakeEngine(64, 16, config);
  GenerationRequest r = Workload(false)[5];
  r.prompt.resize(std::min<size_t>(r.prompt.size(), 20));
  r.max_tokens = 150;  // well past the 64-token window
  GenerationRequest beside = Workload(false)[6];
  beside.max_tokens = 10;
  const auto first = RunAll(*engine, {r, beside});
  ASSERT_EQ(first[0].size(), 150u);
  // The shifted sequence is as deterministic as any other: alone it yields the same tokens.
  const auto alone = RunAll(*engine, {r});
  EXPECT_EQ(alone[0], first[0]);
  EXPECT_TRUE(WaitForFreeBlocks(*engine));
}

}  // namespace
}  // namespace ropewire::scheduler
