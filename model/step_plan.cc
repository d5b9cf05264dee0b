#include "model/step_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ropewire::model {

void StepPlan::AddSequence(int64_t seq_id, const std::vector<int32_t>& tokens,
                           int32_t cache_start, int32_t offset,
                           const std::vector<int32_t>& blocks, bool want_logits) {
  if (query_start.empty()) query_start.push_back(0);
  seq_ids.push_back(seq_id);
  for (size_t i = 0; i < tokens.size(); ++i) {
    token_ids.push_back(tokens[i]);
    positions.push_back(offset + cache_start + static_cast<int32_t>(i));
  }
  query_start.push_back(static_cast<int32_t>(token_ids.size()));
  kv_len.push_back(cache_start + static_cast<int32_t>(tokens.size()));
  position_offset.push_back(offset);
  pending_tables_.push_back(blocks);
  if (want_logits && !tokens.empty()) logits_rows.push_back(query_start.back() - 1);
}

void StepPlan::Finalize() {
  max_blocks_per_seq = 0;
  for (const auto& table : pending_tables_) {
    max_blocks_per_seq = std::max(max_blocks_per_seq, static_cast<int>(table.size()));
  }
  block_tables.assign(pending_tables_.size() * max_blocks_per_seq, -1);
  for (size_t s = 0; s < pending_tables_.size(); ++s) {
    std::copy(pending_tables_[s].begin(), pending_tables_[s].end(),
              block_tables.begin() + s * max_blocks_per_seq);
  }
  pending_tables_.clear();
  if (query_start.empty()) query_start.push_back(0);
}

kernels::RaggedBatchView StepPlan::BatchView() const {
  kernels::RaggedBatchView view;
  view.num_seqs = num_seqs();
  view.query_start = query_start.data();
  view.kv_len = kv_len.data();
  view.position_offset = position_offset.data();
  view.block_tables = block_tables.data();
  view.max_blocks_per_seq = max_blocks_per_seq;
  return view;
}

absl::Status ValidateStepPlan(const StepPlan& plan, int64_t vocab_size, int num_blocks,
                              int block_size) {
  const int num_seqs = plan.num_seqs();
  if (plan.query_start.size() != size_t(num_seqs) + 1 || plan.kv_len.size() != size_t(num_seqs) ||
      plan.position_offset.size() != size_t(num_seqs) ||
      plan.positions.size() != plan.token_ids.size() ||
      plan.block_tables.size() != size_t(num_seqs) * plan.max_blocks_per_seq ||
      plan.query_start.front() != 0 || plan.query_start.back() != plan.num_tokens()) {
    return absl::InvalidArgumentError("step plan: inconsistent array sizes (missing Finalize()?)");
  }
  for (int32_t id : plan.token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: token id ", id, " outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  for (int s = 0; s < num_seqs; ++s) {
    const int query_len = plan.query_start[s + 1] - plan.query_start[s];
    const int kv_len = plan.kv_len[s];
    if (query_len < 0 || kv_len < query_len || plan.position_offset[s] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: sequence ", plan.seq_ids[s], " has inconsistent lengths"));
    }
    const int needed_blocks = (kv_len + block_size - 1) / block_size;
    if (needed_blocks > plan.max_blocks_per_seq) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: sequence ", plan.seq_ids[s], " needs ", needed_blocks, " blocks"));
    }
    for (int b = 0; b < needed_blocks; ++b) {
      const int32_t block = plan.block_tables[size_t(s) * plan.max_blocks_per_seq + b];
      if (block < 0 || block >= num_blocks) {
        return absl::InvalidArgumentError(absl::StrCat("step plan: sequence ", plan.seq_ids[s],
                                                       " uses invalid block ", block));
      }
    }
  }
  for (int32_t row : plan.logits_rows) {
    if (row < 0 || row >= plan.num_tokens()) {
      return absl::InvalidArgumentError(absl::StrCat("step plan: logits row ", row, " out of range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ropewire::model
