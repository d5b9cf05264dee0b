#include "scheduler/engine.h"

#include <algorithm>
#include <ctime>
#include <random>

#include "absl/strings/str_cat.h"

namespace ropewire::scheduler {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time the calling thread has used.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(
    std::unique_ptr<model::StepExecutor> executor, EngineConfig config) {
  const model::ModelConfig& model = executor->config();
  SchedulerConfig& s = config.scheduler;
  const int64_t executor_limit = executor->max_model_len();
  if (s.max_model_len <= 0)
    s.max_model_len = static_cast<int>(std::min<int64_t>(executor_limit, 1 << 30));
  if (s.max_model_len > executor_limit) {
    return absl::InvalidArgumentError(absl::StrCat("max_model_len ", s.max_model_len,
                                                   " exceeds what the model accepts (",
                                                   executor_limit, ")"));
  }
  const model::StepExecutor* tables = executor.get();
  if (tables->PositionTableKey(1) != tables->PositionTableKey(int64_t(s.max_model_len) * 4)) {
    // Length-dependent tables (LongRoPE, dynamic NTK): recompute on a table change, and no
    // sharing of blocks computed under another table.
    s.rope_table_key = [tables](int64_t length) { return tables->PositionTableKey(length); };
    s.enable_prefix_caching = false;
  }
  if (s.eos_token_ids.empty()) s.eos_token_ids = model.eos_token_ids;
  if (s.max_num_seqs <= 0 || s.max_num_batched_tokens <= 0 || s.max_waiting <= 0) {
    return absl::InvalidArgumentError(
        "max_num_seqs, max_num_batched_tokens and the queue limit must be positive");
  }
  if (s.context_shift_sink_tokens >= 0 && !model.position.IsRelative()) {
    return absl::InvalidArgumentError(
        "context shift needs a relative position encoding (RoPE, ALiBi or none); this model adds "
        "absolute positions to its embeddings, so shifted positions would change its output");
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(executor), std::move(config)));
  engine->thread_ = std::thread([e = engine.get()] { e->Loop(); });
  return engine;
}

Engine::Engine(std::unique_ptr<model::StepExecutor> executor, EngineConfig config)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      scheduler_(
          Scheduler::Create(config_.scheduler, executor_->num_blocks(), executor_->block_size())),
      sampler_(executor_->config().vocab_size) {
  seed_base_ = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
  stats_.num_blocks = stats_.num_free_blocks = executor_->num_blocks();
  stats_.block_size = executor_->block_size();
}

Engine::~Engine() { Stop(std::chrono::milliseconds(0)); }

absl::Status Engine::Validate(const GenerationRequest& request) const {
  const int64_t vocab = executor_->config().vocab_size;
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", id, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  for (int32_t id : request.stop_token_ids) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids: ", id, " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  if (absl::Status s = request.sampling.Validate(vocab); !s.ok()) return s;
  // Length and capacity: the scheduler's own check, answered here so the caller hears at once.
  return scheduler_->CheckAdmissible(request);
}

absl::Status Engine::Submit(GenerationRequest request, std::shared_ptr<OutputSink> sink) {
  if (absl::Status s = Validate(request); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (accepted_ids_.count(request.request_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("request id \"", request.request_id, "\" is already in flight"));
  }
  if (static_cast<int>(inbox_.size()) + stats_.num_waiting >= config_.scheduler.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue is full (", config_.scheduler.max_waiting, " waiting requests); retry later"));
  }
  if (!request.sampling.seed)
    request.sampling.seed = seed_base_ + seeds_drawn_++ * 0x9e3779b97f4a7c15ull;
  accepted_ids_.emplace(request.request_id, 0);
  inbox_.push_back({std::move(request), std::move(sink), Clock::now()});
  wake_.notify_one();
  return absl::OkStatus();
}

void Engine::Abort(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  aborts_.push_back(request_id);
  wake_.notify_one();
}

void Engine::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_deadline_ = Clock::now() + grace;
    }
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// ---------------------------------------------------------------------------------------------
// Engine thread

void Engine::Deliver(const SequenceUpdate& update, const absl::Status& status) {
  auto it = live_.find(update.seq_id);
  if (it == live_.end()) return;
  RequestOutput out;
  out.request_id = it->second.request_id;
  out.new_tokens = update.new_tokens;
  out.finished = update.finished;
  out.reason = update.reason;
  out.status = status;
  out.submitted = it->second.submitted;
  out.first_scheduled = it->second.first_scheduled;
  out.prompt_tokens = update.num_prompt_tokens;
  out.completion_tokens = update.num_output_tokens;
  out.cached_prompt_tokens = update.num_cached_prompt_tokens;
  std::shared_ptr<OutputSink> sink = it->second.sink;
  const bool keep_going = sink->OnOutput(out);
  if (!update.finished && !keep_going) {
    if (auto final_update = scheduler_->Finish(update.seq_id, FinishReason::kStopString)) {
      Deliver(*final_update);
    }
    return;
  }
  if (update.finished) {
    ids_.erase(out.request_id);
    live_.erase(it);
    std::lock_guard<std::mutex> lock(mu_);
    accepted_ids_.erase(out.request_id);
  }
}

void Engine::TakeInbox() {
  std::vector<Pending> inbox;
  std::vector<std::string> aborts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox.swap(inbox_);
    aborts.swap(aborts_);
  }
  for (Pending& p : inbox) {
    const std::string request_id = p.request.request_id;
    const uint64_t seed = *p.request.sampling.seed;
    auto id = scheduler_->Add(std::move(p.request), seed);
    if (!id.ok()) {
      // Submit() checked a queue count from the last step; the scheduler's is exact.
      FinishUnscheduled(p, FinishReason::kError, id.status());
      continue;
    }
    live_[*id] = {request_id, std::move(p.sink), p.submitted, std::nullopt};
    ids_[request_id] = *id;
  }
  for (const std::string& request_id : aborts) {
    auto it = ids_.find(request_id);
    if (it == ids_.end()) continue;
    if (auto update = scheduler_->Finish(it->second, FinishReason::kCancelled)) Deliver(*update);
  }
  for (const auto& update : scheduler_->ExpireDeadlines(Clock::now())) Deliver(update);
}

void Engine::FinishUnscheduled(Pending& pending, FinishReason reason, const absl::Status& status) {
  RequestOutput out;
  out.request_id = pending.request.request_id;
  out.finished = true;
  out.reason = reason;
  out.status = status;
  out.prompt_tokens = static_cast<int>(pending.request.prompt.size());
  out.submitted = pending.submitted;
  pending.sink->OnOutput(out);
  std::lock_guard<std::mutex> lock(mu_);
  accepted_ids_.erase(out.request_id);
}

void Engine::FinishAll(FinishReason reason, const absl::Status& status) {
  std::vector<int64_t> ids;
  for (const auto& [id, live] : live_) ids.push_back(id);
  for (int64_t id : ids) {
    if (auto update = scheduler_->Finish(id, reason)) Deliver(*update, status);
  }
}

void Engine::NoteFirstScheduled(const SchedulerOutput& plan, Clock::time_point when) {
  for (const auto& entry : plan.scheduled) {
    if (!entry.admitted) continue;
    auto it = live_.find(entry.seq_id);
    if (it != live_.end() && !it->second.first_scheduled) it->second.first_scheduled = when;
  }
}

bool Engine::WaitForWork() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool has_input = !inbox_.empty() || !aborts_.empty();
    if (stopping_) {
      if (!scheduler_->HasWork() && !has_input) return false;
      if (Clock::now() >= stop_deadline_) {
        // Grace period over: refuse what is still queued and cancel what is in flight.
        std::vector<Pending> inbox;
        inbox.swap(inbox_);
        lock.unlock();
        for (Pending& p : inbox) FinishUnscheduled(p, FinishReason::kCancelled, absl::OkStatus());
        FinishAll(FinishReason::kCancelled, absl::OkStatus());
        return false;
      }
    }
    if (has_input || scheduler_->HasWork()) return true;
    wake_.wait(lock);
  }
}

void Engine::RunStep() {
  const Clock::time_point t0 = Clock::now();
  const double cpu0 = ThreadCpuSeconds();
  SchedulerOutput plan = scheduler_->Plan();
  if (plan.empty()) return;
  NoteFirstScheduled(plan, t0);
  const Clock::time_point t1 = Clock::now();
  const double cpu1 = ThreadCpuSeconds();
  absl::Status status = executor_->Execute(plan.plan, &logits_);
  const Clock::time_point t2 = Clock::now();
  if (!status.ok()) {
    // A failed step fails the sequences in it (with the executor's code); the rest of the
    // engine carries on.
    const absl::Status error(status.code(), absl::StrCat("model step failed: ", status.message()));
    // Apply the plan's block operations and preemptions with no sampled tokens, then fail
    // the sequences that were in the step.
    SchedulerOutput applied = plan;
    for (auto& entry : applied.scheduled) entry.samples = false;
    scheduler_->Commit(applied, {});
    for (const auto& entry : plan.scheduled) {
      if (auto update = scheduler_->Finish(entry.seq_id, FinishReason::kError))
        Deliver(*update, error);
    }
    return;
  }
  std::vector<model::SampledToken> samples;
  const int64_t vocab = executor_->config().vocab_size;
  size_t row = 0;
  for (const auto& entry : plan.scheduled) {
    if (!entry.samples) continue;
    const Sequence& seq = *scheduler_->Get(entry.seq_id);
    samples.push_back(sampler_.Sample(logits_.data() + row * vocab, seq.request.sampling,
                                      seq.request.prompt, seq.output, seq.seed));
    ++row;
  }
  const Clock::time_point t3 = Clock::now();
  const double cpu3 = ThreadCpuSeconds();
  const std::vector<SequenceUpdate> updates = scheduler_->Commit(plan, samples);
  for (const auto& update : updates) Deliver(update);
  const Clock::time_point t4 = Clock::now();
  const double cpu4 = ThreadCpuSeconds();
  if (config_.on_step) {
    config_.on_step({Seconds(t4 - t0), Seconds(t2 - t1), plan.plan.num_tokens(),
                     static_cast<int>(plan.scheduled.size())});
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.steps += 1;
  stats_.generated_tokens += static_cast<int64_t>(samples.size());
  stats_.preemptions += static_cast<int64_t>(plan.preempted.size());
  stats_.schedule_seconds += Seconds(t1 - t0) + Seconds(t4 - t3);
  stats_.schedule_cpu_seconds += (cpu1 - cpu0) + (cpu4 - cpu3);
  stats_.execute_seconds += Seconds(t2 - t1);
  stats_.sample_seconds += Seconds(t3 - t2);
}

void Engine::PublishStats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.num_waiting = scheduler_->NumWaiting();
  stats_.num_running = scheduler_->NumRunning();
  stats_.num_free_blocks = scheduler_->blocks().NumFree();
  stats_.prefix_hit_tokens = scheduler_->prefix_hit_tokens();
  stats_.prompt_tokens = scheduler_->prompt_tokens_admitted();
}

void Engine::Loop() {
  while (WaitForWork()) {
    TakeInbox();
    RunStep();
    PublishStats();
  }
  PublishStats();
}

}  // namespace ropewire::scheduler
