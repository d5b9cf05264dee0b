// Paged causal attention on the CPU over a ragged batch (prefill chunks and decodes mixed).
// Keys are read un-rotated from the pages and rotated by their position inside the kernel
// (DESIGN.md decision 1).
#pragma once

#include <cstdint>

#include "kernels/paged_kv.h"
#include "kernels/position_encoding.h"
#include "kernels/rope_table.h"

namespace ropewire::kernels::cpu {

struct AttentionParams {
  int num_heads = 0;     // query heads
  int num_kv_heads = 0;  // key/value heads (GQA: num_heads is a multiple)
  int head_dim = 0;
  float softmax_scale = 1.0f;
  // Keys further back than this many positions are not attended (Mistral); 0 disables.
  int sliding_window = 0;
  const PositionEncoding* position = nullptr;
  // RoPE: the table of every sequence of the step ([num_seqs], RopeTableSet::per_sequence());
  // when null, `rope_table` serves them all. Each must cover its sequence's positions.
  const RopeTable* const* seq_rope_tables = nullptr;
  const RopeTable* rope_table = nullptr;
  // The pages already hold rotated keys (only the query is rotated). Not how ropewire caches
  // keys (DESIGN.md decision 1); it exists to measure what rotating keys on the fly costs.
  bool keys_prerotated = false;
};

// Writes the step's new keys and values into their slots, in the cache's dtype (geometry.dtype,
// rounded to nearest even). `slots[r]` is the flat slot (block * block_size + offset) of row r;
// k/v rows hold num_kv_heads * head_dim values.
void WriteKv(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
             const int32_t* slots, int64_t rows, const KvGeometry& geometry,
             KvLayerView<void> layer);

// out[r, h*head_dim ...] = softmax(q_h · K^T * scale + position term + causal mask) · V for each
// query row r of each sequence; the position term is ALiBi's or T5's score bias when the
// encoding has one. Query row i of sequence s sits at cache index kv_len[s] - query_len(s) + i and
// sees cache indices 0 ... that index; positions are position_offset[s] + cache index.
// Pages of a 16-bit dtype are widened to f32 block by block; all arithmetic is f32.
void PagedAttention(const float* q, int64_t q_stride, KvLayerView<const void> layer,
                    const KvGeometry& geometry, const RaggedBatchView& batch,
                    const AttentionParams& params, float* out, int64_t out_stride);

}  // namespace ropewire::kernels::cpu
