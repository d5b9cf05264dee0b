// Per-step facts every model family derives from a StepPlan the same way: the cache slot of each
// new token and the ragged-batch view the attention kernels take.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/paged_kv.h"
#include "kernels/rope_table.h"
#include "model/step_plan.h"

namespace ropewire::model {

struct StepContext {
  std::vector<int32_t> slots;  // flat cache slot (block * block_size + offset) per token row
  kernels::RaggedBatchView batch;
  int32_t max_position = -1;   // largest position any key or query of the step has

  // `rope_table`, when given, is grown to cover max_position.
  void Prepare(const StepPlan& plan, int block_size, kernels::RopeTable* rope_table);
};

}  // namespace ropewire::model
