#include "scheduler/static_batch_scheduler.h"

#include <algorithm>

namespace ropewire::scheduler {

StaticBatchScheduler::StaticBatchScheduler(const SchedulerConfig& config, int num_blocks,
                                           int block_size)
    : Scheduler(config, num_blocks, block_size, /*prefix_caching=*/false) {}

int StaticBatchScheduler::AdmissionReserve(int computed) const {
  return std::max(computed, config().max_model_len);
}

int64_t StaticBatchScheduler::LifetimeReserve(int64_t total) const {
  return std::max<int64_t>(total, config().max_model_len);
}

void StaticBatchScheduler::PlanExtraRows(SchedulerOutput* out) const {
  for (int i = 0; i < static_cast<int>(padding_rows_.size()); ++i) {
    const PaddingRow& row = padding_rows_[i];
    // A row stops where its reservation ends (its prompt plus another member's output can be
    // longer than max_model_len).
    if (row.num_computed + 1 > static_cast<int>(row.blocks.size()) * block_size()) continue;
    out->plan.AddSequence(-1 - i, {row.token}, row.num_computed, row.position_offset, row.blocks,
                          /*want_logits=*/false);
    out->padding_rows.push_back(i);
  }
}

void StaticBatchScheduler::CommitExtraRows(const SchedulerOutput& output) {
  for (int i : output.padding_rows) ++padding_rows_.at(i).num_computed;
}

void StaticBatchScheduler::ReleaseBlocks(Sequence& seq) {
  if (seq.state != SequenceState::kRunning) {
    Scheduler::ReleaseBlocks(seq);
    return;
  }
  // The batch keeps the member's reservation until it ends, and its row goes on computing.
  held_blocks_.insert(held_blocks_.end(), seq.blocks.begin(), seq.blocks.end());
  if (seq.num_computed > 0) {
    padding_rows_.push_back({seq.CacheTokenAt(seq.num_computed - 1), seq.num_computed,
                             seq.position_offset, seq.blocks});
  }
  seq.blocks.clear();
}

void StaticBatchScheduler::AfterFinish() {
  if (!running().empty()) return;
  for (int32_t b : held_blocks_) mutable_blocks().Release(b);
  held_blocks_.clear();
  padding_rows_.clear();
}

void StaticBatchScheduler::AppendHeldTables(
    std::vector<const std::vector<int32_t>*>* tables) const {
  tables->push_back(&held_blocks_);
}

}  // namespace ropewire::scheduler
