// Internal interface between the paged-attention host code (paged_attention.cu) and the kernel
// files compiled per storage type (attention_{decode,prefill}_{bf16,fp16}.cu): the work items a
// plan uploads, the kernel arguments, the tile constants both sides size shared memory from, and
// the launchers. nvcc only.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/paged_attention.h"

namespace ropewire::kernels::cuda::attention {

// The position term a kernel is compiled for. Learned / sinusoidal encodings map to kNone.
enum class PositionVariant { kNone, kRopeNeox, kRopeInterleaved, kAlibi, kRelativeBias };

__host__ __device__ constexpr bool IsRope(PositionVariant variant) {
  return variant == PositionVariant::kRopeNeox || variant == PositionVariant::kRopeInterleaved;
}

// What the plan records of one sequence, from the host copy of the batch.
struct SeqInfo {
  int32_t query_start;
  int32_t query_len;
  int32_t kv_len;
  int32_t position_offset;
};

// A decode (query_len 1) sequence's keys [key_begin, key_end) for one thread block. `partial` is
// the partial-result slot when the sequence is split into several partitions, -1 when this block
// writes the output itself.
struct DecodeItem {
  int32_t seq;
  int32_t key_begin;
  int32_t key_end;
  int32_t partial;
};

// A split decode sequence whose partitions' partial results are combined.
struct CombineItem {
  int32_t seq;
  int32_t first_partial;
  int32_t num_partitions;
  int32_t unused;
};

// Rows [row_begin, row_begin + PrefillRows(head_dim)) of a prefill sequence, rows flattened as
// query_index * group + head_in_group.
struct PrefillItem {
  int32_t seq;
  int32_t row_begin;
  int32_t unused0;
  int32_t unused1;
};

struct PositionArgs {
  // RoPE.
  const DeviceRopeTableView* seq_rope_tables;
  DeviceRopeTableView rope_table;
  int rotary_dim;
  int rope_sin_offset;  // floats from a row's cos to its sin
  int rope_row_floats;
  // ALiBi.
  const float* alibi_slopes;
  bool alibi_bf16_key_position_form;
  float alibi_bias_scale;
  // T5.
  const float* relative_bias;  // [relative_bias_rows][num_heads]
  int relative_bias_last_row;
};

// Arguments both kernels share. Element strides and offsets.
template <typename T>
struct KernelCommon {
  const T* q;
  int64_t q_stride;
  const T* keys;
  const T* values;
  int block_size;
  int64_t block_stride;  // KvGeometry::BlockStride()
  int64_t head_stride;   // KvGeometry::HeadStride()
  const int32_t* block_tables;
  int max_blocks_per_seq;
  const SeqInfo* seqs;
  int num_heads;
  int num_kv_heads;
  int group;  // num_heads / num_kv_heads
  int sliding_window;
  float score_scale;  // softmax_scale * log2(e): scores live in base 2
  PositionArgs position;
  T* out;
  int64_t out_stride;
};

template <typename T>
struct DecodeArgs {
  KernelCommon<T> common;
  const DecodeItem* items;
  int kv_chunks;       // blockIdx.y % kv_chunks: which KV heads (one per warp)
  int heads_per_warp;  // blockIdx.y / kv_chunks: which query heads of each KV head
  int table_stride;    // floats per staged RoPE row in shared memory
  float* partial_ml;   // [slot][num_heads][2]: running max (base 2) and sum
  float* partial_acc;  // [slot][num_heads][head_dim]: unnormalised output
};

template <typename T>
struct CombineArgs {
  const SeqInfo* seqs;
  const CombineItem* items;
  int num_heads;
  int head_dim;
  const float* partial_ml;
  const float* partial_acc;
  T* out;
  int64_t out_stride;
};

template <typename T>
struct PrefillArgs {
  KernelCommon<T> common;
  const PrefillItem* items;
};

struct LaunchShape {
  dim3 grid;
  dim3 block;
  size_t shared_bytes = 0;
  cudaStream_t stream = nullptr;
};

// ---- Decode tiles: one warp per KV head, 16 keys per tile, each key scored by two lanes. ----
inline constexpr int kDecodeTileKeys = 16;
inline constexpr int kMaxQueryHeadsPerWarp = 8;
inline constexpr int kMaxDecodeWarps = 8;

__host__ __device__ constexpr int DecodeMaxWarps(int head_dim) {
  return head_dim > 128 ? 4 : kMaxDecodeWarps;
}
// Staged RoPE rows are padded by 16 bytes so that the 16 lanes reading 16 rows hit distinct banks.
__host__ __device__ constexpr int DecodeTableStride(int rope_row_floats) {
  return rope_row_floats + 4;
}
__host__ __device__ constexpr size_t DecodeKvStageElements(int head_dim) {
  return size_t(kDecodeTileKeys) * (head_dim + 8);  // rows padded by 16 bytes
}
// Per block: [warps][stage 0/1][K, V] staged rows, [stage][key] RoPE rows, [warps][heads][dim]
// queries, [warps][kMaxQueryHeadsPerWarp][key] probabilities.
__host__ __device__ constexpr size_t DecodeSharedBytes(int head_dim, int warps, int heads_per_warp,
                                                       int table_stride, size_t element_bytes) {
  return size_t(warps) * 4 * DecodeKvStageElements(head_dim) * element_bytes +
         size_t(2) * kDecodeTileKeys * table_stride * sizeof(float) +
         size_t(warps) * heads_per_warp * head_dim * sizeof(float) +
         size_t(warps) * kMaxQueryHeadsPerWarp * kDecodeTileKeys * sizeof(float);
}

// ---- Prefill tiles: 4 warps, each owning rows of the tile, 32 keys per tile (one per lane). ----
inline constexpr int kPrefillWarps = 4;
inline constexpr int kPrefillTileKeys = 32;

__host__ __device__ constexpr int PrefillRowsPerWarp(int head_dim) {
  return head_dim > 128 ? 8 : 16;
}
__host__ __device__ constexpr int PrefillRows(int head_dim) {
  return kPrefillWarps * PrefillRowsPerWarp(head_dim);
}
// Per block: [rows][dim] queries, [key][dim + 4] rotated fp32 keys, [warps][rows][key]
// probabilities, [stage][K, V][key][dim + 8] staged rows.
__host__ __device__ constexpr size_t PrefillSharedBytes(int head_dim, size_t element_bytes) {
  return size_t(PrefillRows(head_dim)) * head_dim * sizeof(float) +
         size_t(kPrefillTileKeys) * (head_dim + 4) * sizeof(float) +
         size_t(kPrefillWarps) * PrefillRowsPerWarp(head_dim) * kPrefillTileKeys * sizeof(float) +
         size_t(4) * kPrefillTileKeys * (head_dim + 8) * element_bytes;
}

inline constexpr int kCombineThreads = 64;

// Launchers, explicitly instantiated for __nv_bfloat16 and __half in the per-type files.
template <typename T>
absl::Status LaunchDecode(PositionVariant variant, int head_dim, const DecodeArgs<T>& args,
                          const LaunchShape& shape);
// Thread blocks of the decode kernel an SM holds at once with `shape`'s block and shared memory.
template <typename T>
absl::Status DecodeBlocksPerSm(PositionVariant variant, int head_dim, const LaunchShape& shape,
                               int* blocks);
template <typename T>
absl::Status LaunchCombine(const CombineArgs<T>& args, const LaunchShape& shape);
template <typename T>
absl::Status LaunchPrefill(PositionVariant variant, int head_dim, const PrefillArgs<T>& args,
                           const LaunchShape& shape);

}  // namespace ropewire::kernels::cuda::attention
