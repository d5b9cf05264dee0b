// StepPlan: everything an executor needs for one step over a ragged batch (DESIGN.md decisions
// 4 and 5). It is a plain value: the scheduler builds it, every backend reads it. What a backend
// needs beyond the scheduler's choices (cache slots, the longest query and KV lengths, how many
// sequences decode) is derived once, by Finalize(), so no backend derives it again.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "kernels/paged_kv.h"

namespace ropewire::model {

struct StepPlan {
  // Flattened over sequences, one entry per token processed this step.
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;  // position_offset + cache index of each token
  std::vector<int32_t> slots;      // cache slot (block * block_size + offset) its K/V goes to

  // Per sequence.
  std::vector<int64_t> seq_ids;          // caller's ids, for messages
  std::vector<int32_t> query_start;      // [num_seqs + 1]: rows of each sequence's tokens
  std::vector<int32_t> kv_len;           // cached tokens once this step's tokens are appended
  std::vector<int32_t> position_offset;  // position of cache index 0
  // The sequences' block tables, one row of max_blocks_per_seq each; a row holds the
  // sequence's whole table (it may reserve blocks beyond kv_len) and then -1.
  std::vector<int32_t> block_tables;
  std::vector<int32_t> num_table_blocks;  // blocks in each sequence's table
  int max_blocks_per_seq = 0;

  // Token rows whose logits the executor returns, in this order.
  std::vector<int32_t> logits_rows;

  // Set by Finalize().
  int block_size = 0;
  int max_query_len = 0;    // most tokens any sequence feeds this step
  int max_kv_len = 0;       // longest cache any sequence attends to
  int num_decode_seqs = 0;  // sequences feeding exactly one token

  int num_seqs() const { return static_cast<int>(seq_ids.size()); }
  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  // Sequence s's block table (its held blocks, without the row's padding).
  std::span<const int32_t> BlockTable(int s) const {
    return {block_tables.data() + int64_t(s) * max_blocks_per_seq,
            static_cast<size_t>(num_table_blocks[s])};
  }

  // Appends one sequence: `tokens` are its next tokens, whose first sits at cache index
  // `cache_start`; `blocks` is its whole block table; logits are requested for its last token
  // when `want_logits`. Call Finalize() after the last sequence.
  void AddSequence(int64_t seq_id, const std::vector<int32_t>& tokens, int32_t cache_start,
                   int32_t offset, const std::vector<int32_t>& blocks, bool want_logits);
  // Lays out block_tables with a common row width and derives the slots and maxima for a cache
  // of `cache_block_size` tokens per block.
  void Finalize(int cache_block_size);

  kernels::RaggedBatchView BatchView() const;

 private:
  std::vector<int32_t> pending_blocks_;  // AddSequence's tables back to back, until Finalize
};

// Checks a plan against the cache and vocabulary it will run on: consistent sizes, token ids in
// range, block tables covering every cached token with valid block ids, slots matching them.
absl::Status ValidateStepPlan(const StepPlan& plan, int64_t vocab_size, int num_blocks,
                              int block_size);

}  // namespace ropewire::model
