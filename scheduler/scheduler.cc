#include "scheduler/scheduler.h"

#include <algorithm>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "scheduler/static_batch_scheduler.h"

namespace ropewire::scheduler {

int SchedulerOutput::NumSamples() const {
  int n = 0;
  for (const auto& s : scheduled) n += s.samples ? 1 : 0;
  return n;
}

struct Scheduler::PlanState {
  explicit PlanState(const BlockManager& blocks) : preview(blocks) {}
  BlockManager::Preview preview;
  SchedulerOutput out;
  int token_budget = 0;
  std::unordered_set<int64_t> preempted;
  std::unordered_set<int64_t> scheduled;
};

std::unique_ptr<Scheduler> Scheduler::Create(const SchedulerConfig& config, int num_blocks,
                                             int block_size) {
  if (config.static_batching) {
    return std::make_unique<StaticBatchScheduler>(config, num_blocks, block_size);
  }
  return std::make_unique<Scheduler>(config, num_blocks, block_size);
}

Scheduler::Scheduler(const SchedulerConfig& config, int num_blocks, int block_size)
    : Scheduler(config, num_blocks, block_size, config.enable_prefix_caching) {}

Scheduler::Scheduler(const SchedulerConfig& config, int num_blocks, int block_size,
                     bool prefix_caching)
    : config_(config),
      block_size_(block_size),
      total_blocks_(num_blocks),
      blocks_(num_blocks, block_size, prefix_caching) {}

int64_t Scheduler::LifetimeReserve(int64_t total) const {
  // A context shift keeps a sequence within max_model_len however long it generates.
  const bool shifts = config_.context_shift_sink_tokens >= 0;
  return shifts ? std::min<int64_t>(total, config_.max_model_len) : total;
}

absl::Status Scheduler::CheckAdmissible(const GenerationRequest& request) const {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) return absl::InvalidArgumentError("prompt must hold at least one token");
  if (request.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be >= 1, got ", request.max_tokens));
  }
  const int64_t total = prompt + request.max_tokens;
  const bool shifts = config_.context_shift_sink_tokens >= 0;
  if (shifts && prompt >= config_.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt, " tokens) must be shorter than the maximum model length of ",
        config_.max_model_len));
  }
  if (!shifts && total > config_.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt, " tokens) + max_tokens (", request.max_tokens, ") = ", total,
        " exceeds the maximum model length of ", config_.max_model_len));
  }
  const int64_t blocks = (LifetimeReserve(total) + block_size_ - 1) / block_size_;
  if (blocks > total_blocks_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request needs ", blocks, " KV blocks of ", block_size_,
                     " tokens but the whole cache has ", total_blocks_, "; it can never fit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Scheduler::Add(GenerationRequest request, uint64_t seed) {
  if (absl::Status admissible = CheckAdmissible(request); !admissible.ok()) return admissible;
  if (NumWaiting() >= config_.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat("the queue is full (", config_.max_waiting,
                                                     " waiting requests); retry later"));
  }
  auto seq = std::make_unique<Sequence>();
  seq->id = next_id_++;
  seq->arrival = next_arrival_++;
  seq->request = std::move(request);
  seq->seed = seed;
  UpdateHashes(*seq);
  const int64_t id = seq->id;
  waiting_.emplace(seq->arrival, id);
  sequences_.emplace(id, std::move(seq));
  return id;
}

const Sequence* Scheduler::Get(int64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------
// Plan

void Scheduler::Schedule(PlanState& s, const Sequence& seq, const std::vector<int32_t>& blocks,
                         int cache_start, int num_tokens, bool admitted, int cached_tokens) const {
  ScheduledSequence entry;
  entry.seq_id = seq.id;
  entry.cache_start = cache_start;
  entry.num_tokens = num_tokens;
  entry.samples = cache_start + num_tokens == seq.CacheLength();
  entry.admitted = admitted;
  entry.cached_tokens = cached_tokens;
  std::vector<int32_t> tokens(num_tokens);
  for (int i = 0; i < num_tokens; ++i) tokens[i] = seq.CacheTokenAt(cache_start + i);
  s.out.plan.AddSequence(seq.id, tokens, cache_start, seq.position_offset, blocks, entry.samples);
  s.out.scheduled.push_back(entry);
  s.token_budget -= num_tokens;
  s.scheduled.insert(seq.id);
}

void Scheduler::AllocateBlocks(PlanState& s, int count, std::vector<int32_t>* table) const {
  for (int i = 0; i < count; ++i) {
    table->push_back(s.preview.Allocate());
    s.out.block_ops.push_back({BlockOp::Kind::kAllocate, table->back()});
  }
}

bool Scheduler::MakeRoom(PlanState& s, int need, int64_t for_id) const {
  while (s.preview.Available() < need) {
    // The most recently admitted running sequence not already part of this step.
    int64_t victim_id = -1;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      if (!s.preempted.count(it->second) && !s.scheduled.count(it->second)) {
        victim_id = it->second;
        break;
      }
    }
    if (victim_id < 0) return false;  // cannot happen: for_id itself is a candidate
    const Sequence& victim = *sequences_.at(victim_id);
    for (auto b = victim.blocks.rbegin(); b != victim.blocks.rend(); ++b) {
      s.preview.Release(*b);
      s.out.block_ops.push_back({BlockOp::Kind::kRelease, *b});
    }
    s.preempted.insert(victim_id);
    s.out.preempted.push_back(victim_id);
    if (victim_id == for_id) return false;
  }
  return true;
}

void Scheduler::ScheduleRunning(PlanState& s, const Sequence& seq, int num_tokens) const {
  std::vector<int32_t> table = seq.blocks;
  AllocateBlocks(s, BlocksFor(seq.num_computed + num_tokens) - static_cast<int>(table.size()),
                 &table);
  Schedule(s, seq, table, seq.num_computed, num_tokens, false, 0);
}

void Scheduler::ScheduleRecompute(PlanState& s, const Sequence& seq) const {
  std::vector<int32_t> table = seq.blocks;
  AllocateBlocks(s, BlocksFor(seq.CacheLength()) - static_cast<int>(table.size()), &table);
  Schedule(s, seq, table, 0, seq.CacheLength(), false, 0);
}

bool Scheduler::NeedsRopeRecompute(const Sequence& seq) const {
  if (!config_.rope_table_key || seq.num_computed == 0) return false;
  return config_.rope_table_key(int64_t(seq.position_offset) + seq.CacheLength()) !=
         seq.cache_rope_key;
}

void Scheduler::PlanDecodes(PlanState& s) const {
  for (const auto& [order, id] : running_) {
    const Sequence& seq = *sequences_.at(id);
    if (s.preempted.count(id) || seq.NumUncomputed() != 1) continue;
    if (s.token_budget <= 0) break;
    const int need = BlocksFor(seq.num_computed + 1) - static_cast<int>(seq.blocks.size());
    if (!MakeRoom(s, need, id)) continue;
    if (NeedsRopeRecompute(seq)) {
      ScheduleRecompute(s, seq);
    } else {
      ScheduleRunning(s, seq, 1);
    }
  }
}

void Scheduler::PlanRunningPrefills(PlanState& s) const {
  for (const auto& [order, id] : running_) {
    const Sequence& seq = *sequences_.at(id);
    if (s.preempted.count(id) || s.scheduled.count(id) || seq.NumUncomputed() <= 1) continue;
    if (s.token_budget <= 0) break;
    const int held = static_cast<int>(seq.blocks.size());
    // A chunk shrinks to the blocks at hand; only when not one token fits is room made.
    if (held * block_size_ <= seq.num_computed && s.preview.Available() == 0 &&
        !MakeRoom(s, 1, id)) {
      continue;
    }
    const int fit = (held + s.preview.Available()) * block_size_ - seq.num_computed;
    const int n = std::min({seq.NumUncomputed(), s.token_budget, fit});
    if (n == seq.NumUncomputed() && NeedsRopeRecompute(seq)) {
      // The last chunk samples with a table the earlier chunks did not use: redo it all now.
      ScheduleRecompute(s, seq);
    } else if (n > 0) {
      ScheduleRunning(s, seq, n);
    }
  }
}

std::vector<int32_t> Scheduler::PrefixHits(const PlanState& s, const Sequence& seq) const {
  std::vector<int32_t> hits;
  // (A shifted sequence's cache no longer lines up with its token blocks: no prefix matching.)
  const int max_hits = seq.dropped_tokens > 0 ? 0 : (seq.NumTokens() - 1) / block_size_;
  std::vector<int32_t> tokens(block_size_);
  for (int i = 0; i < max_hits && i < static_cast<int>(seq.block_hashes.size()); ++i) {
    const uint64_t parent = i == 0 ? 0 : seq.block_hashes[i - 1];
    for (int t = 0; t < block_size_; ++t) tokens[t] = seq.TokenAt(i * block_size_ + t);
    const int32_t block = blocks_.LookupCached(seq.block_hashes[i], parent, tokens.data());
    if (block < 0 || s.preview.Evicted(block)) break;
    hits.push_back(block);
  }
  return hits;
}

bool Scheduler::TryAdmit(PlanState& s, const Sequence& seq) const {
  const std::vector<int32_t> hits = PrefixHits(s, seq);
  int hits_from_free = 0;
  for (int32_t b : hits) hits_from_free += s.preview.RefCount(b) == 0 ? 1 : 0;
  const int cached = static_cast<int>(hits.size()) * block_size_;
  const int n = std::min(seq.CacheLength() - cached, s.token_budget);
  const int new_blocks = BlocksFor(AdmissionReserve(cached + n)) - static_cast<int>(hits.size());
  if (n <= 0 || s.preview.Available() - hits_from_free < new_blocks) return false;

  std::vector<int32_t> table;
  for (int32_t b : hits) {
    s.preview.Take(b);
    s.out.block_ops.push_back({BlockOp::Kind::kTake, b});
    table.push_back(b);
  }
  AllocateBlocks(s, new_blocks, &table);
  Schedule(s, seq, table, cached, n, true, cached);
  return true;
}

void Scheduler::PlanAdmissions(PlanState& s) const {
  // Admitting while preempting would only thrash.
  if (!s.preempted.empty() || !AdmitsNow()) return;
  int running = NumRunning();
  for (const auto& [arrival, id] : waiting_) {
    if (running >= config_.max_num_seqs || s.token_budget <= 0) break;
    if (!TryAdmit(s, *sequences_.at(id))) break;  // first come, first served: no overtaking
    ++running;
  }
}

SchedulerOutput Scheduler::Plan() const {
  PlanState s(blocks_);
  s.token_budget = config_.max_num_batched_tokens;
  PlanDecodes(s);
  PlanRunningPrefills(s);
  PlanAdmissions(s);
  PlanExtraRows(&s.out);
  s.out.plan.Finalize(block_size_);
  return std::move(s.out);
}

// ---------------------------------------------------------------------------------------------
// Commit

void Scheduler::UpdateHashes(Sequence& seq) {
  if (!blocks_.prefix_caching()) return;
  const int full = seq.NumTokens() / block_size_;
  std::vector<int32_t> tokens(block_size_);
  while (static_cast<int>(seq.block_hashes.size()) < full) {
    const int i = static_cast<int>(seq.block_hashes.size());
    for (int t = 0; t < block_size_; ++t) tokens[t] = seq.TokenAt(i * block_size_ + t);
    const uint64_t parent = i == 0 ? 0 : seq.block_hashes[i - 1];
    seq.block_hashes.push_back(BlockManager::ChainHash(parent, tokens.data(), block_size_));
  }
}

void Scheduler::RegisterComputedBlocks(Sequence& seq) {
  if (!blocks_.prefix_caching() || seq.dropped_tokens > 0) return;
  const int computed_full = std::min<int>(seq.num_computed / block_size_, seq.block_hashes.size());
  std::vector<int32_t> tokens(block_size_);
  for (int i = seq.num_registered_blocks; i < computed_full; ++i) {
    for (int t = 0; t < block_size_; ++t) tokens[t] = seq.TokenAt(i * block_size_ + t);
    const uint64_t parent = i == 0 ? 0 : seq.block_hashes[i - 1];
    blocks_.RegisterFull(seq.blocks[i], seq.block_hashes[i], parent, tokens.data());
  }
  seq.num_registered_blocks = std::max(seq.num_registered_blocks, computed_full);
}

FinishReason Scheduler::StopReason(const Sequence& seq) const {
  const int32_t last = seq.output.back();
  const auto& stops = seq.request.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), last) != stops.end()) return FinishReason::kStopToken;
  if (!seq.request.ignore_eos) {
    const auto& eos = config_.eos_token_ids;
    if (std::find(eos.begin(), eos.end(), last) != eos.end()) return FinishReason::kStopToken;
  }
  if (static_cast<int>(seq.output.size()) >= seq.request.max_tokens) return FinishReason::kLength;
  if (seq.CacheLength() >= config_.max_model_len && config_.context_shift_sink_tokens < 0) {
    return FinishReason::kLength;
  }
  return FinishReason::kNone;
}

bool Scheduler::ShiftContext(Sequence& seq) {
  if (config_.context_shift_sink_tokens < 0) return false;
  const int sink_blocks = BlocksFor(config_.context_shift_sink_tokens);
  // Whole computed blocks after the sinks; drop the older half of them.
  const int window_blocks = seq.num_computed / block_size_ - sink_blocks;
  if (window_blocks <= 0) return false;
  const int drop = std::max(1, window_blocks / 2);
  for (int i = 0; i < drop; ++i) blocks_.Release(seq.blocks[sink_blocks + i]);
  seq.blocks.erase(seq.blocks.begin() + sink_blocks, seq.blocks.begin() + sink_blocks + drop);
  seq.sink_tokens = sink_blocks * block_size_;
  seq.dropped_tokens += drop * block_size_;
  seq.num_computed -= drop * block_size_;
  ++seq.num_shifts;
  return true;
}

void Scheduler::ReleaseBlocks(Sequence& seq) {
  for (auto b = seq.blocks.rbegin(); b != seq.blocks.rend(); ++b) blocks_.Release(*b);
  seq.blocks.clear();
}

void Scheduler::Remove(int64_t seq_id) {
  Sequence& seq = *sequences_.at(seq_id);
  if (seq.admitted >= 0) running_.erase(seq.admitted);
  waiting_.erase(seq.arrival);
  sequences_.erase(seq_id);
}

void Scheduler::ApplyPreemptions(const SchedulerOutput& output) {
  for (int64_t id : output.preempted) {
    Sequence& seq = *sequences_.at(id);
    running_.erase(seq.admitted);
    seq.admitted = -1;
    seq.blocks.clear();  // released by the replayed block ops
    seq.num_computed = 0;
    seq.num_registered_blocks = 0;
    seq.state = SequenceState::kPreempted;
    ++seq.num_preemptions;
    waiting_.emplace(seq.arrival, id);
  }
}

void Scheduler::ApplyScheduled(Sequence& seq, const ScheduledSequence& entry,
                               std::span<const int32_t> table) {
  if (entry.admitted) {
    waiting_.erase(seq.arrival);
    seq.admitted = next_admission_++;
    running_.emplace(seq.admitted, seq.id);
    seq.state = SequenceState::kRunning;
    seq.num_computed = entry.cache_start;
    seq.num_cached_prompt_tokens = entry.cached_tokens;
    prefix_hit_tokens_ += entry.cached_tokens;
    prompt_tokens_admitted_ += static_cast<int64_t>(seq.request.prompt.size());
  }
  seq.blocks.assign(table.begin(), table.end());
  seq.num_computed = entry.cache_start + entry.num_tokens;
  if (config_.rope_table_key) {
    seq.cache_rope_key = config_.rope_table_key(int64_t(seq.position_offset) + seq.num_computed);
  }
  RegisterComputedBlocks(seq);
}

SequenceUpdate Scheduler::AppendSample(Sequence& seq, const model::SampledToken& sample) {
  SequenceUpdate update = Describe(seq);
  update.new_tokens.push_back(sample);
  seq.output.push_back(sample.token);
  ++update.num_output_tokens;
  UpdateHashes(seq);
  update.reason = StopReason(seq);
  if (update.reason == FinishReason::kNone && seq.CacheLength() >= config_.max_model_len &&
      !ShiftContext(seq)) {
    update.reason = FinishReason::kLength;
  }
  if (update.reason != FinishReason::kNone) {
    update.finished = true;
    seq.finish_reason = update.reason;
    ReleaseBlocks(seq);
    seq.state = SequenceState::kFinished;
    Remove(seq.id);
  }
  return update;
}

std::vector<SequenceUpdate> Scheduler::Commit(const SchedulerOutput& output,
                                              const std::vector<model::SampledToken>& samples) {
  for (const BlockOp& op : output.block_ops) blocks_.Apply(op);
  ApplyPreemptions(output);
  CommitExtraRows(output);
  std::vector<SequenceUpdate> updates;
  size_t next_sample = 0;
  for (size_t i = 0; i < output.scheduled.size(); ++i) {
    const ScheduledSequence& entry = output.scheduled[i];
    Sequence& seq = *sequences_.at(entry.seq_id);
    ApplyScheduled(seq, entry, output.plan.BlockTable(static_cast<int>(i)));
    if (entry.samples) updates.push_back(AppendSample(seq, samples.at(next_sample++)));
  }
  AfterFinish();
  return updates;
}

SequenceUpdate Scheduler::Describe(const Sequence& seq) {
  SequenceUpdate update;
  update.seq_id = seq.id;
  update.num_prompt_tokens = static_cast<int>(seq.request.prompt.size());
  update.num_output_tokens = static_cast<int>(seq.output.size());
  update.num_cached_prompt_tokens = seq.num_cached_prompt_tokens;
  return update;
}

std::optional<SequenceUpdate> Scheduler::Finish(int64_t seq_id, FinishReason reason) {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) return std::nullopt;
  Sequence& seq = *it->second;
  SequenceUpdate update = Describe(seq);
  ReleaseBlocks(seq);
  seq.state = SequenceState::kFinished;
  seq.finish_reason = reason;
  Remove(seq_id);
  AfterFinish();
  update.finished = true;
  update.reason = reason;
  return update;
}

std::vector<SequenceUpdate> Scheduler::ExpireDeadlines(Clock::time_point now) {
  std::vector<int64_t> expired;
  for (const auto& [id, seq] : sequences_) {
    if (seq->request.deadline && *seq->request.deadline <= now) expired.push_back(id);
  }
  std::vector<SequenceUpdate> updates;
  for (int64_t id : expired) updates.push_back(*Finish(id, FinishReason::kDeadline));
  return updates;
}

absl::Status Scheduler::CheckInvariants() const {
  std::vector<const std::vector<int32_t>*> tables;
  for (const auto& [id, seq] : sequences_) {
    tables.push_back(&seq->blocks);
    const bool running = seq->state == SequenceState::kRunning;
    if (running != (seq->admitted >= 0 && running_.count(seq->admitted))) {
      return absl::InternalError(absl::StrCat("sequence ", id, " running state disagrees"));
    }
    if (!running && !seq->blocks.empty()) {
      return absl::InternalError(absl::StrCat("sequence ", id, " holds blocks while not running"));
    }
    if (running && static_cast<int>(seq->blocks.size()) < BlocksFor(seq->num_computed)) {
      return absl::InternalError(absl::StrCat("sequence ", id, " has fewer blocks than tokens"));
    }
  }
  AppendHeldTables(&tables);
  return blocks_.CheckConsistency(tables);
}

}  // namespace ropewire::scheduler
