#include "model/step_context.h"

#include <algorithm>

namespace ropewire::model {

void StepContext::Prepare(const StepPlan& plan, int block_size, kernels::RopeTable* rope_table) {
  batch = plan.BatchView();
  slots.resize(plan.num_tokens());
  max_position = -1;
  for (int s = 0; s < plan.num_seqs(); ++s) {
    const int32_t begin = plan.query_start[s];
    const int32_t end = plan.query_start[s + 1];
    const int32_t first_index = plan.kv_len[s] - (end - begin);
    const int32_t* table = batch.BlockTable(s);
    for (int32_t row = begin; row < end; ++row) {
      const int32_t index = first_index + (row - begin);
      slots[row] = table[index / block_size] * block_size + index % block_size;
    }
    if (plan.kv_len[s] > 0) {
      max_position = std::max(max_position, plan.position_offset[s] + plan.kv_len[s] - 1);
    }
  }
  if (rope_table != nullptr) rope_table->EnsureCapacity(int64_t(max_position) + 1);
}

}  // namespace ropewire::model
