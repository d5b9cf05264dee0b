// Rows selected by index on the GPU: token embeddings with the absolute position table of
// learned / sinusoidal encodings (the counterpart of CpuDecoder::Embed on the CPU), and a plain
// row gather (the LM head's rows when there is no final norm to fuse it with). Storage type T is
// __nv_bfloat16 or __half; sums are f32, rounded once. All pointers are device pointers; indices
// are clamped into their table, so an unvalidated index reads a wrong row, never out of bounds —
// the host validates ids and positions before the step (CheckStepPlan does).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace ropewire::kernels::cuda {

template <typename T>
struct EmbeddingTables {
  const T* tokens = nullptr;  // [vocab, dim]
  int64_t vocab = 0;
  float scale = 1.0f;            // token embeddings × scale (XGLM: sqrt(d_model))
  const T* positions = nullptr;  // [position_rows, dim] learned or sinusoidal; null: none
  int64_t position_rows = 0;
  int32_t position_offset = 0;  // the table's row of position p is p + offset (OPT, XGLM: 2)
};

// out[r] = tokens[token_ids[r]] * scale + positions[position_ids[r] + position_offset], the
// position term only when tables.positions is set (position_ids may then not be null).
template <typename T>
absl::Status EmbedTokens(const EmbeddingTables<T>& tables, const int32_t* token_ids,
                         const int32_t* position_ids, int64_t rows, int64_t dim, T* out,
                         int64_t out_stride, cudaStream_t stream);

// x[r] = x[r] * scale + positions[position_ids[r] + position_offset] in place: the rest of
// EmbedTokens when a projection sits between the lookup and the positions (OPT's project_in:
// EmbedTokens with scale 1 and no positions, the GEMM, then this). tables.tokens is ignored.
template <typename T>
absl::Status ScaleAndAddPositions(const EmbeddingTables<T>& tables, const int32_t* position_ids,
                                  int64_t rows, int64_t dim, T* x, int64_t stride,
                                  cudaStream_t stream);

// dst[i] = src[source_rows[i]] for i < num_rows (cols elements each); src has src_rows rows.
// dst must not overlap src.
template <typename T>
absl::Status GatherRows(const T* src, int64_t src_stride, int64_t src_rows,
                        const int32_t* source_rows, int64_t num_rows, T* dst, int64_t dst_stride,
                        int64_t cols, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
