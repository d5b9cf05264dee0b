// Paged causal attention on the GPU over a ragged batch (prefill chunks and decodes mixed), with
// the semantics of kernels/cpu/paged_attention.h on the same plain views (kernels/paged_kv.h):
// keys are cached un-rotated and rotated by their position inside the kernel (DESIGN.md
// decision 1); ALiBi and T5 biases are score terms (decision 2). Storage is bf16 or fp16 for the
// queries, the pages and the output; scores, softmax and accumulation are fp32.
//
// Per step the caller
//   1. appends the step's keys and values with WriteKv,
//   2. prepares the position data: DeviceRopeTableSet::Prepare (RoPE) once per step,
//      DeviceScoreBias (ALiBi, T5) once per model,
//   3. prepares a PagedAttentionPlan from the host copy of the batch, once per step,
//   4. calls PagedAttention for every layer with the device view of the batch and that plan.
// Everything is enqueued on the caller's stream; a plan (which holds the scratch memory) and a
// table set belong to one stream at a time.
//
// Plain C++ may include this header (no device code here).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/paged_kv.h"
#include "kernels/position_encoding.h"
#include "kernels/rope_table.h"

namespace ropewire::kernels::cuda {

namespace attention {
struct PlanState;
struct PlanAccess;
}  // namespace attention

// Head dims that have compiled attention kernels; others are an InvalidArgument error.
inline constexpr int kAttentionHeadDims[] = {64, 80, 96, 128, 256};
bool AttentionHeadDimSupported(int head_dim);

// ---------------------------------------------------------------------------------------------
// RoPE tables on the device.

// Row p of a device RoPE table holds the cos of the R/2 rotated pairs at position p, zero padded
// to RopeSinOffset(R) floats, then their sin, padded the same way: every row is whole 16-byte
// chunks, which the kernels copy with cp.async. attention_scaling is folded in as on the CPU.
int RopeSinOffset(int rotary_dim);
int RopeRowFloats(int rotary_dim);

// What a kernel needs of one table. Positions at or past `capacity` read the last row (the
// kernels never read outside the table), so tables must cover the positions attended, as on the
// CPU.
struct DeviceRopeTableView {
  const float* rows = nullptr;  // [capacity][RopeRowFloats(rotary_dim)], device memory
  int64_t capacity = 0;
  int rotary_dim = 0;
};

// One kernels::RopeTable copied to the device.
class DeviceRopeTable {
 public:
  DeviceRopeTable() = default;
  // Copies every position the host table covers (enqueued on `stream`; the host table may change
  // as soon as this returns). Empty tables are an error: call RopeTable::EnsureCapacity first.
  static absl::StatusOr<DeviceRopeTable> Upload(const RopeTable& table, cudaStream_t stream);

  DeviceRopeTableView view() const { return {buffer_.get<const float>(), capacity_, rotary_dim_}; }
  int64_t capacity() const { return capacity_; }

 private:
  DeviceBuffer buffer_;
  int64_t capacity_ = 0;
  int rotary_dim_ = 0;
};

// The device twin of kernels::RopeTableSet: each sequence of a step gets the table its length
// selects (static, LongRoPE short/long, dynamic-NTK per length), uploaded once and kept while it
// stays in use.
class DeviceRopeTableSet {
 public:
  explicit DeviceRopeTableSet(const RopeSpec& spec);
  DeviceRopeTableSet(const DeviceRopeTableSet&) = delete;
  DeviceRopeTableSet& operator=(const DeviceRopeTableSet&) = delete;
  ~DeviceRopeTableSet();

  // Chooses every sequence's table from the host copy of the batch (position_offset and kv_len),
  // uploads the tables that are new or grew, and the per-sequence views. Before it frees a table
  // it waits for `stream`, whose kernels may still read it.
  absl::Status Prepare(const RaggedBatchView& host_batch, cudaStream_t stream);
  // [num_seqs] device array for AttentionParams::seq_rope_tables, valid until the next Prepare.
  const DeviceRopeTableView* per_sequence() const {
    return views_.get<const DeviceRopeTableView>();
  }

 private:
  RopeSpec spec_;
  std::unique_ptr<RopeTableSet> host_tables_;
  std::map<int64_t, DeviceRopeTable> uploaded_;  // by RopeTableKey: equal keys, equal tables
  std::vector<DeviceRopeTableView> host_views_;
  DeviceBuffer views_;
};

// ---------------------------------------------------------------------------------------------
// ALiBi slopes and the T5 bias on the device.

class DeviceScoreBias {
 public:
  DeviceScoreBias() = default;
  // ALiBi: the slopes of the num_heads query heads. T5: the bias of every query-key distance up
  // to the one where the buckets stop changing (attention is causal, so keys never follow the
  // query), looked up on the host with T5RelativePositionBucket so the buckets match the CPU
  // exactly. Other kinds upload nothing. Synchronous.
  static absl::StatusOr<DeviceScoreBias> Upload(const PositionEncoding& position, int num_heads);

  const float* alibi_slopes() const { return slopes_.get<const float>(); }
  // [relative_bias_rows][num_heads]: row d is the bias at distance d (query - key); larger
  // distances use the last row.
  const float* relative_bias() const { return relative_bias_.get<const float>(); }
  int relative_bias_rows() const { return relative_bias_rows_; }

 private:
  DeviceBuffer slopes_;
  DeviceBuffer relative_bias_;
  int relative_bias_rows_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Attention.

struct AttentionParams {
  int num_heads = 0;     // query heads
  int num_kv_heads = 0;  // key/value heads (GQA: num_heads is a multiple)
  int head_dim = 0;      // one of kAttentionHeadDims
  float softmax_scale = 1.0f;
  // Keys further back than this many positions are not attended (Mistral); 0 disables.
  int sliding_window = 0;
  // Host descriptor; selects the score variant: RoPE (layout, rotary_dim), ALiBi (form,
  // bias_scale), T5 bias, or none. Learned and sinusoidal encodings are added to the embeddings
  // elsewhere and, like a null pointer, mean no position term here.
  const PositionEncoding* position = nullptr;

  // RoPE: each sequence's table ([num_seqs] device array, DeviceRopeTableSet::per_sequence());
  // when null, `rope_table` serves every sequence.
  const DeviceRopeTableView* seq_rope_tables = nullptr;
  DeviceRopeTableView rope_table;
  // ALiBi: [num_heads] slopes on the device (DeviceScoreBias::alibi_slopes()).
  const float* alibi_slopes = nullptr;
  // T5: bias by distance on the device (DeviceScoreBias::relative_bias()) and its row count.
  const float* relative_bias = nullptr;
  int relative_bias_rows = 0;
};

// How a step's attention is split among thread blocks, computed on the host from the host copy
// of the batch and uploaded with the device scratch it needs (partial results of decodes split
// along their keys). Prepare once per step; every layer with the same AttentionParams shape
// (heads, head_dim, sliding window, position kind) reuses it. Device memory only grows, so a
// steady state allocates nothing.
class PagedAttentionPlan {
 public:
  PagedAttentionPlan();
  PagedAttentionPlan(PagedAttentionPlan&&) noexcept;
  PagedAttentionPlan& operator=(PagedAttentionPlan&&) noexcept;
  ~PagedAttentionPlan();

  // `host_batch` needs query_start, kv_len and position_offset on the host (block_tables are not
  // read); it must describe the same step as the device view later given to PagedAttention.
  // Decodes (query_len 1) are split into partitions of keys so that long contexts fill the GPU;
  // prefill chunks into tiles of query rows.
  absl::Status Prepare(const RaggedBatchView& host_batch, const AttentionParams& params,
                       cudaStream_t stream);

  // What the plan chose, for tests and benchmarks.
  int partition_keys() const;   // keys per decode partition
  int max_partitions() const;   // most partitions of one decode sequence
  int decode_blocks() const;    // thread blocks of the decode kernel
  int prefill_blocks() const;   // thread blocks of the prefill kernel
  size_t device_bytes() const;  // device memory held

 private:
  friend struct attention::PlanAccess;
  std::unique_ptr<attention::PlanState> state_;
};

// Writes the step's new keys and values into their slots: `slots[r]` (device) is the flat slot
// (block * block_size + offset) of row r; k/v rows hold num_kv_heads * head_dim values, `k_stride`
// and `v_stride` elements apart. Rows whose slot is negative or past the pages are skipped.
template <typename T>
absl::Status WriteKv(const T* k, int64_t k_stride, const T* v, int64_t v_stride,
                     const int32_t* slots, int64_t rows, const KvGeometry& geometry,
                     KvLayerView<T> layer, cudaStream_t stream);

// out[r, h*head_dim ...] = softmax(q_h · K^T * scale + position term + causal mask) · V for each
// query row r of each sequence, exactly as kernels::cpu::PagedAttention. All pointers, and those
// inside `batch`, are device memory; `plan` was prepared for this batch and these params. Rows of
// `q` and `out` are q_stride / out_stride elements apart; `out` must be 4-byte aligned with an
// even stride, the pages 16-byte aligned.
template <typename T>
absl::Status PagedAttention(const T* q, int64_t q_stride, KvLayerView<const T> layer,
                            const KvGeometry& geometry, const RaggedBatchView& batch,
                            const AttentionParams& params, const PagedAttentionPlan& plan, T* out,
                            int64_t out_stride, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
