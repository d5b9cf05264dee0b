// The engine: one thread that owns the scheduler, the KV pool and the model, and runs
// Plan → Execute → Sample → Commit step after step. Other threads talk to it only through
// Submit() and Abort(), which never wait for a step, and receive results through each request's
// OutputSink.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/sampler.h"
#include "model/step_executor.h"
#include "scheduler/scheduler.h"

namespace ropewire::scheduler {

// What a request receives after a step that concerned it (at most one per step).
struct RequestOutput {
  std::string request_id;
  std::vector<model::SampledToken> new_tokens;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  // Why a request ended with kError, code included: RESOURCE_EXHAUSTED or INVALID_ARGUMENT when
  // the scheduler refused it after Submit() accepted it, the executor's own code when a model
  // step failed. OK for every other reason.
  absl::Status status;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;  // prompt tokens served by the prefix cache
  // When Submit() accepted the request, and when a step first scheduled it (unset until then):
  // the difference is the time it queued.
  Clock::time_point submitted;
  std::optional<Clock::time_point> first_scheduled;
};

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // Runs on the engine thread and must not block. Returning false ends the request
  // (e.g. a stop string matched): it then gets one more call with finished = true and
  // reason kStopString. After a call with finished = true there are no more calls.
  virtual bool OnOutput(const RequestOutput& output) = 0;
};

// One engine step as the engine thread saw it, for metrics.
struct StepRecord {
  double step_seconds = 0;   // wall time from Plan to the end of Commit and delivery
  double model_seconds = 0;  // the executor's share of it
  int num_tokens = 0;        // tokens fed to the model (prompt chunks + decodes)
  int num_sequences = 0;
};

struct EngineConfig {
  SchedulerConfig
      scheduler;  // max_model_len and eos_token_ids are taken from the model when 0/empty
  // Called on the engine thread after every step that ran the model; must not block.
  std::function<void(const StepRecord&)> on_step;
};

struct EngineStats {
  int num_waiting = 0;
  int num_running = 0;
  int num_free_blocks = 0;
  int num_blocks = 0;
  int block_size = 0;
  int64_t steps = 0;
  int64_t generated_tokens = 0;
  int64_t prompt_tokens = 0;      // prompt tokens looked up in the prefix cache (every admission)
  int64_t prefix_hit_tokens = 0;  // of those, tokens the prefix cache served
  int64_t preemptions = 0;
  double schedule_seconds = 0;  // Plan + Commit + sampling bookkeeping on the engine thread (wall)
  // The same phases in the engine thread's CPU time: what scheduling costs, without the time
  // the thread waited for a core (on a small machine the model's worker threads compete).
  double schedule_cpu_seconds = 0;
  double execute_seconds = 0;  // model time
  double sample_seconds = 0;
};

class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      std::unique_ptr<model::StepExecutor> executor, EngineConfig config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Errors: INVALID_ARGUMENT (a bad parameter, named),
  // RESOURCE_EXHAUSTED (queue full, or the request can never fit in the KV cache),
  // ALREADY_EXISTS (a live request has this id), UNAVAILABLE (stopping). The queue count it
  // checks is refreshed after each step, so the scheduler may still refuse a request accepted
  // here; that request then ends with kError and RESOURCE_EXHAUSTED in its output's status.
  absl::Status Submit(GenerationRequest request, std::shared_ptr<OutputSink> sink);
  // Ends a request at the next step boundary (finish reason kCancelled); unknown ids are ignored.
  void Abort(const std::string& request_id);
  // Stops accepting work, lets in-flight requests finish for up to `grace`, cancels the rest,
  // and joins the engine thread. Idempotent.
  void Stop(std::chrono::milliseconds grace);

  EngineStats Stats() const;
  const model::ModelConfig& model_config() const { return executor_->config(); }
  const SchedulerConfig& scheduler_config() const { return config_.scheduler; }
  int num_blocks() const { return executor_->num_blocks(); }
  int block_size() const { return executor_->block_size(); }

 private:
  Engine(std::unique_ptr<model::StepExecutor> executor, EngineConfig config);
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<OutputSink> sink;
    Clock::time_point submitted;
  };
  struct Live {
    std::string request_id;
    std::shared_ptr<OutputSink> sink;
    Clock::time_point submitted;
    std::optional<Clock::time_point> first_scheduled;
  };

  absl::Status Validate(const GenerationRequest& request) const;
  void Loop();
  bool WaitForWork();  // false when the loop should exit
  void TakeInbox();
  void RunStep();
  void Deliver(const SequenceUpdate& update, const absl::Status& status = absl::OkStatus());
  void FinishAll(FinishReason reason, const absl::Status& status);
  // Ends a request the scheduler never took (refused, or still queued when a stop ran out).
  void FinishUnscheduled(Pending& pending, FinishReason reason, const absl::Status& status);
  void NoteFirstScheduled(const SchedulerOutput& plan, Clock::time_point when);
  void PublishStats();

  std::unique_ptr<model::StepExecutor> executor_;
  EngineConfig config_;
  std::unique_ptr<Scheduler> scheduler_;
  model::Sampler sampler_;
  std::vector<float> logits_;
  std::unordered_map<int64_t, Live> live_;        // engine thread only
  std::unordered_map<std::string, int64_t> ids_;  // engine thread only

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable wake_;
  std::vector<Pending> inbox_;
  std::vector<std::string> aborts_;
  std::unordered_map<std::string, int>
      accepted_ids_;  // submitted and not yet finished (value unused)
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  EngineStats stats_;
  uint64_t seed_base_ = 0;  // for requests without a seed
  uint64_t seeds_drawn_ = 0;

  std::thread thread_;
};

}  // namespace ropewire::scheduler
