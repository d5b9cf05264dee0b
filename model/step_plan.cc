#include "model/step_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ropewire::model {

void StepPlan::AddSequence(int64_t seq_id, const std::vector<int32_t>& tokens, int32_t cache_start,
                           int32_t offset, const std::vector<int32_t>& blocks, bool want_logits) {
  if (query_start.empty()) query_start.push_back(0);
  seq_ids.push_back(seq_id);
  for (size_t i = 0; i < tokens.size(); ++i) {
    token_ids.push_back(tokens[i]);
    positions.push_back(offset + cache_start + static_cast<int32_t>(i));
  }
  query_start.push_back(static_cast<int32_t>(token_ids.size()));
  kv_len.push_back(cache_start + static_cast<int32_t>(tokens.size()));
  position_offset.push_back(offset);
  pending_blocks_.insert(pending_blocks_.end(), blocks.begin(), blocks.end());
  num_table_blocks.push_back(static_cast<int32_t>(blocks.size()));
  if (want_logits && !tokens.empty()) logits_rows.push_back(query_start.back() - 1);
}

void StepPlan::Finalize(int cache_block_size) {
  if (query_start.empty()) query_start.push_back(0);
  block_size = cache_block_size;
  max_blocks_per_seq = 0;
  for (int32_t n : num_table_blocks) max_blocks_per_seq = std::max(max_blocks_per_seq, int(n));
  block_tables.assign(size_t(num_seqs()) * max_blocks_per_seq, -1);
  int64_t next = 0;
  for (int s = 0; s < num_seqs(); ++s) {
    std::copy_n(pending_blocks_.begin() + next, num_table_blocks[s],
                block_tables.begin() + int64_t(s) * max_blocks_per_seq);
    next += num_table_blocks[s];
  }
  pending_blocks_.clear();

  slots.resize(token_ids.size());
  max_query_len = max_kv_len = num_decode_seqs = 0;
  for (int s = 0; s < num_seqs(); ++s) {
    const int32_t begin = query_start[s];
    const int32_t len = query_start[s + 1] - begin;
    const int32_t* table = block_tables.data() + int64_t(s) * max_blocks_per_seq;
    for (int32_t i = 0; i < len; ++i) {
      const int32_t index = kv_len[s] - len + i;  // cache index of the sequence's row i
      // An index beyond the table is caught by ValidateStepPlan; no slot is derived for it.
      slots[begin + i] = index / block_size < num_table_blocks[s]
                             ? table[index / block_size] * block_size + index % block_size
                             : -1;
    }
    max_query_len = std::max(max_query_len, int(len));
    max_kv_len = std::max(max_kv_len, int(kv_len[s]));
    num_decode_seqs += len == 1 ? 1 : 0;
  }
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

namespace {

absl::Status CheckSizes(const StepPlan& plan, int block_size) {
  const size_t num_seqs = plan.seq_ids.size();
  if (plan.query_start.size() != num_seqs + 1 || plan.kv_len.size() != num_seqs ||
      plan.position_offset.size() != num_seqs || plan.num_table_blocks.size() != num_seqs ||
      plan.positions.size() != plan.token_ids.size() ||
      plan.slots.size() != plan.token_ids.size() ||
      plan.block_tables.size() != num_seqs * plan.max_blocks_per_seq ||
      plan.query_start.front() != 0 || plan.query_start.back() != plan.num_tokens()) {
    return absl::InvalidArgumentError("step plan: inconsistent array sizes (missing Finalize()?)");
  }
  if (plan.block_size != block_size) {
    return absl::InvalidArgumentError(absl::StrCat("step plan: laid out for blocks of ",
                                                   plan.block_size, " tokens, the cache has ",
                                                   block_size));
  }
  return absl::OkStatus();
}

// Sequence s: consistent lengths, a block table of valid blocks covering its cache, and the
// slot of every token it feeds inside that table.
absl::Status CheckSequence(const StepPlan& plan, int s, int num_blocks, int block_size) {
  const int query_len = plan.query_start[s + 1] - plan.query_start[s];
  const int kv_len = plan.kv_len[s];
  if (query_len < 0 || kv_len < query_len || plan.position_offset[s] < 0 ||
      plan.num_table_blocks[s] > plan.max_blocks_per_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("step plan: sequence ", plan.seq_ids[s], " has inconsistent lengths"));
  }
  const int needed_blocks = (kv_len + block_size - 1) / block_size;
  if (needed_blocks > plan.num_table_blocks[s]) {
    return absl::InvalidArgumentError(
        absl::StrCat("step plan: sequence ", plan.seq_ids[s], " needs ", needed_blocks, " blocks"));
  }
  const std::span<const int32_t> table = plan.BlockTable(s);
  for (int b = 0; b < needed_blocks; ++b) {
    if (table[b] < 0 || table[b] >= num_blocks) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: sequence ", plan.seq_ids[s], " uses invalid block ", table[b]));
    }
  }
  for (int32_t row = plan.query_start[s]; row < plan.query_start[s + 1]; ++row) {
    const int32_t index = kv_len - (plan.query_start[s + 1] - row);
    if (plan.slots[row] != table[index / block_size] * block_size + index % block_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: token row ", row, " has a slot outside its block table"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateStepPlan(const StepPlan& plan, int64_t vocab_size, int num_blocks,
                              int block_size) {
  if (absl::Status s = CheckSizes(plan, block_size); !s.ok()) return s;
  for (int32_t id : plan.token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "step plan: token id ", id, " outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  for (int s = 0; s < plan.num_seqs(); ++s) {
    if (absl::Status status = CheckSequence(plan, s, num_blocks, block_size); !status.ok()) {
      return status;
    }
  }
  for (int32_t row : plan.logits_rows) {
    if (row < 0 || row >= plan.num_tokens()) {
      return absl::InvalidArgumentError(
          absl::StrCat("step plan: logits row ", row, " out of range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ropewire::model
