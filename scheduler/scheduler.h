// Continuous batching: plan-then-commit over a paged KV pool (DESIGN.md decisions 4 and 5).
//
// Plan() is pure: it decides which sequences run this step and with how many tokens — running
// decodes first (one token each), then running prompt chunks, then waiting sequences in arrival
// order (chunked prefill) while their next blocks fit. When a decode or a stalled prompt chunk
// cannot get a block, the most recently admitted running sequence not yet in the step is
// preempted (its blocks released, its tokens recomputed when it is admitted again). Plan() names
// the exact blocks each sequence will use and returns the StepPlan the model runs. Commit() then
// applies that plan and the sampled tokens: block operations, appended tokens, stop conditions,
// released blocks.
//
// The static batching baseline (scheduler/static_batch_scheduler.h) is a policy on the same
// machinery: Scheduler::Create picks it when the config asks for it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/sampler.h"
#include "model/step_plan.h"
#include "scheduler/block_manager.h"
#include "scheduler/sequence.h"

namespace ropewire::scheduler {

struct SchedulerConfig {
  int max_num_seqs = 64;              // sequences per step
  int max_num_batched_tokens = 2048;  // tokens per step (decodes + prompt chunks)
  int max_model_len = 0;              // prompt + output tokens of one sequence (0: the model's)
  int max_waiting = 4096;             // queued sequences before submissions are refused
  bool enable_prefix_caching = true;
  // Baseline for comparison only: Scheduler::Create returns the static batching policy
  // (scheduler/static_batch_scheduler.h).
  bool static_batching = false;
  std::vector<int32_t> eos_token_ids;
  // Context shift for relative position encodings: when a sequence's cache reaches
  // max_model_len, keep its first this-many tokens (rounded up to whole blocks; attention sinks)
  // and the most recent half of the rest, and go on generating. -1 disables it (the sequence
  // then finishes with kLength).
  int context_shift_sink_tokens = -1;
  // Which rotary table a sequence of a given length uses (kernels::RopeTableKey). When a
  // sequence's key changes (LongRoPE past its original length, dynamic NTK past the trained
  // length) its cache is recomputed in one step so it matches a full forward with the new
  // table: keys are stored un-rotated, but the K/V of layers after the first derive from
  // attention computed with the old table. Unset: every length uses one table.
  std::function<int64_t(int64_t length)> rope_table_key;
};

struct ScheduledSequence {
  int64_t seq_id = 0;
  int cache_start = 0;    // computed tokens before this step (prefix-cache hits included)
  int num_tokens = 0;     // tokens fed this step
  bool samples = false;   // the step reaches the last token, so a new token is sampled
  bool admitted = false;  // moved from waiting to running by this step
  int cached_tokens = 0;  // prefix-cache hits taken at this admission
  // Its block table after this step is the plan's: plan.BlockTable(i) for the i-th entry.
};

struct SchedulerOutput {
  model::StepPlan plan;
  std::vector<ScheduledSequence> scheduled;  // in the plan's sequence order
  std::vector<int64_t> preempted;
  std::vector<BlockOp> block_ops;  // replayed in order by Commit()
  // Static batching: padding rows of finished members in this step (after every scheduled
  // sequence in the plan), as indices into the policy's padding rows.
  std::vector<int> padding_rows;

  bool empty() const { return scheduled.empty() && preempted.empty(); }
  int NumSamples() const;
};

// What one sequence produced in one step, for its request's sink.
struct SequenceUpdate {
  int64_t seq_id = 0;
  std::vector<model::SampledToken> new_tokens;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  int num_prompt_tokens = 0;
  int num_output_tokens = 0;
  int num_cached_prompt_tokens = 0;
};

class Scheduler {
 public:
  // The policy `config` asks for: continuous batching, or the static baseline.
  static std::unique_ptr<Scheduler> Create(const SchedulerConfig& config, int num_blocks,
                                           int block_size);
  // Continuous batching.
  Scheduler(const SchedulerConfig& config, int num_blocks, int block_size);
  virtual ~Scheduler() = default;

  // The length and capacity checks every request must pass to be queued: an empty prompt,
  // max_tokens < 1, or prompt + max_tokens beyond max_model_len (INVALID_ARGUMENT); a request
  // that could never fit in the whole cache (RESOURCE_EXHAUSTED). It reads only the
  // configuration, so any thread may call it: Engine::Submit answers with it before queueing,
  // and Add() applies the same check again.
  absl::Status CheckAdmissible(const GenerationRequest& request) const;

  // Queues a request: CheckAdmissible()'s errors, or RESOURCE_EXHAUSTED for a full queue.
  absl::StatusOr<int64_t> Add(GenerationRequest request, uint64_t seed);

  SchedulerOutput Plan() const;
  // `samples` holds one token per scheduled sequence with samples == true, in order.
  std::vector<SequenceUpdate> Commit(const SchedulerOutput& output,
                                     const std::vector<model::SampledToken>& samples);

  // Between steps: ends a live sequence (abort, deadline, stop string, error) and frees its
  // blocks. Returns nothing if the id is unknown or already finished.
  std::optional<SequenceUpdate> Finish(int64_t seq_id, FinishReason reason);
  std::vector<SequenceUpdate> ExpireDeadlines(Clock::time_point now);

  const Sequence* Get(int64_t seq_id) const;
  int NumWaiting() const { return static_cast<int>(waiting_.size()); }
  int NumRunning() const { return static_cast<int>(running_.size()); }
  bool HasWork() const { return !waiting_.empty() || !running_.empty(); }
  const BlockManager& blocks() const { return blocks_; }
  const SchedulerConfig& config() const { return config_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  int64_t prompt_tokens_admitted() const { return prompt_tokens_admitted_; }
  // Every block owned exactly as often as its reference count says, no block lost.
  absl::Status CheckInvariants() const;

 protected:
  // Working state of one Plan() call.
  struct PlanState;
  Scheduler(const SchedulerConfig& config, int num_blocks, int block_size, bool prefix_caching);

  // Policy hooks; the defaults are continuous batching.
  // Tokens whose blocks an admission takes, when the step leaves `computed` tokens in the cache.
  virtual int AdmissionReserve(int computed) const { return computed; }
  // Most tokens a request of `total` (prompt + max_tokens) tokens ever holds blocks for.
  virtual int64_t LifetimeReserve(int64_t total) const;
  // Whether waiting sequences may be admitted in this step at all.
  virtual bool AdmitsNow() const { return true; }
  // Rows the policy adds to a plan after every scheduled sequence.
  virtual void PlanExtraRows(SchedulerOutput* out) const { (void)out; }
  virtual void CommitExtraRows(const SchedulerOutput& output) { (void)output; }
  // Gives back a finished sequence's blocks.
  virtual void ReleaseBlocks(Sequence& seq);
  // After a sequence left the running set.
  virtual void AfterFinish() {}
  // Block tables the policy holds besides the sequences', for CheckInvariants.
  virtual void AppendHeldTables(std::vector<const std::vector<int32_t>*>* tables) const {
    (void)tables;
  }

  int BlocksFor(int tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  const std::map<int64_t, int64_t>& running() const { return running_; }
  BlockManager& mutable_blocks() { return blocks_; }
  int block_size() const { return block_size_; }

 private:
  // Preempts the newest running sequences not yet in this step until `need` blocks are
  // available; false when `for_id` itself had to go.
  bool MakeRoom(PlanState& s, int need, int64_t for_id) const;
  // Appends `count` fresh blocks to `table`, recording the allocations for Commit().
  void AllocateBlocks(PlanState& s, int count, std::vector<int32_t>* table) const;
  void ScheduleRunning(PlanState& s, const Sequence& seq, int num_tokens) const;
  // The whole cache again, in one step, over the sequence's own blocks (never shared: prefix
  // caching is off for length-dependent tables).
  void ScheduleRecompute(PlanState& s, const Sequence& seq) const;
  // The step would rotate with another table than the one the sequence's cache was built with.
  bool NeedsRopeRecompute(const Sequence& seq) const;
  void PlanDecodes(PlanState& s) const;
  void PlanRunningPrefills(PlanState& s) const;
  void PlanAdmissions(PlanState& s) const;
  // Leading blocks of `seq` the prefix cache holds, always leaving its last token to compute.
  std::vector<int32_t> PrefixHits(const PlanState& s, const Sequence& seq) const;
  bool TryAdmit(PlanState& s, const Sequence& seq) const;
  void Schedule(PlanState& s, const Sequence& seq, const std::vector<int32_t>& blocks,
                int cache_start, int num_tokens, bool admitted, int cached_tokens) const;
  void ApplyPreemptions(const SchedulerOutput& output);
  void ApplyScheduled(Sequence& seq, const ScheduledSequence& entry,
                      std::span<const int32_t> table);
  // The sampled token appended, the stop conditions checked; finished sequences removed.
  SequenceUpdate AppendSample(Sequence& seq, const model::SampledToken& sample);
  void UpdateHashes(Sequence& seq);
  void RegisterComputedBlocks(Sequence& seq);
  FinishReason StopReason(const Sequence& seq) const;
  // Drops blocks after the sinks so the sequence fits max_model_len again; false if it cannot.
  bool ShiftContext(Sequence& seq);
  void Remove(int64_t seq_id);
  static SequenceUpdate Describe(const Sequence& seq);

  SchedulerConfig config_;
  int block_size_;
  const int total_blocks_;  // blocks_.num_blocks(), readable from any thread
  BlockManager blocks_;
  std::unordered_map<int64_t, std::unique_ptr<Sequence>> sequences_;
  std::map<int64_t, int64_t> waiting_;  // arrival -> seq id
  std::map<int64_t, int64_t> running_;  // admission order -> seq id
  int64_t next_id_ = 1;
  int64_t next_arrival_ = 0;
  int64_t next_admission_ = 0;
  int64_t prefix_hit_tokens_ = 0;
  int64_t prompt_tokens_admitted_ = 0;
};

}  // namespace ropewire::scheduler
