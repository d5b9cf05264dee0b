// StepPlan: everything the model runner needs for one step over a ragged batch (DESIGN.md
// decisions 4 and 5). It is a plain value: the scheduler builds it, the runner reads it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "kernels/paged_kv.h"

namespace ropewire::model {

struct StepPlan {
  // Flattened over sequences, one entry per token processed this step.
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;  // position_offset + cache index of each token

  // Per sequence.
  std::vector<int64_t> seq_ids;          // caller's ids, for messages
  std::vector<int32_t> query_start;      // [num_seqs + 1]: rows of each sequence's tokens
  std::vector<int32_t> kv_len;           // cached tokens once this step's tokens are appended
  std::vector<int32_t> position_offset;  // position of cache index 0
  std::vector<int32_t> block_tables;     // [num_seqs * max_blocks_per_seq], unused slots -1
  int max_blocks_per_seq = 0;

  // Token rows whose logits the runner returns, in this order.
  std::vector<int32_t> logits_rows;

  int num_seqs() const { return static_cast<int>(seq_ids.size()); }
  int num_tokens() const { return static_cast<int>(token_ids.size()); }

  // Appends one sequence: `tokens` are its next tokens, whose first sits at cache index
  // `cache_start`; `blocks` is its whole block table; logits are requested for its last token
  // when `want_logits`. Call Finalize() after the last sequence.
  void AddSequence(int64_t seq_id, const std::vector<int32_t>& tokens, int32_t cache_start,
                   int32_t offset, const std::vector<int32_t>& blocks, bool want_logits);
  // Lays out block_tables with a common row width.
  void Finalize();

  kernels::RaggedBatchView BatchView() const;

 private:
  std::vector<std::vector<int32_t>> pending_tables_;
};

// Checks a plan against the cache and vocabulary it will run on: consistent sizes, token ids in
// range, block tables covering every cached token with valid block ids.
absl::Status ValidateStepPlan(const StepPlan& plan, int64_t vocab_size, int num_blocks,
                              int block_size);

}  // namespace ropewire::model
