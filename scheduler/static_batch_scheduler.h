// Static batching, the baseline continuous batching is measured against (never the serving
// default): fixed batches admitted together, KV reserved for max_model_len per member, no joins
// until every member has finished, and a finished member keeps computing (a padding row, its
// output discarded) until the batch ends, as a padded batch of a generate loop does. Prompts are
// not padded, so its prefill is cheaper than a real padded batch's.
#pragma once

#include <cstdint>
#include <vector>

#include "scheduler/scheduler.h"

namespace ropewire::scheduler {

class StaticBatchScheduler final : public Scheduler {
 public:
  StaticBatchScheduler(const SchedulerConfig& config, int num_blocks, int block_size);

 protected:
  int AdmissionReserve(int computed) const override;
  int64_t LifetimeReserve(int64_t total) const override;
  bool AdmitsNow() const override { return running().empty(); }
  void PlanExtraRows(SchedulerOutput* out) const override;
  void CommitExtraRows(const SchedulerOutput& output) override;
  void ReleaseBlocks(Sequence& seq) override;
  void AfterFinish() override;
  void AppendHeldTables(std::vector<const std::vector<int32_t>*>* tables) const override;

 private:
  // A finished member still computing over its reserved blocks.
  struct PaddingRow {
    int32_t token = 0;  // fed again every step; its output is discarded
    int num_computed = 0;
    int position_offset = 0;
    std::vector<int32_t> blocks;
  };
  std::vector<int32_t> held_blocks_;  // finished members' reservations, until the batch ends
  std::vector<PaddingRow> padding_rows_;
};

}  // namespace ropewire::scheduler
