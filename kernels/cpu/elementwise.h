// Row-wise and element-wise CPU operations of the forward pass. Matrices are row-major with an
// explicit row stride so they can address column slices of fused projections.
#pragma once

#include <cstdint>

#include "kernels/activation.h"

namespace ropewire::kernels::cpu {

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, the Llama/T5 RMSNorm (fp32 variance).
void RmsNorm(const float* x, int64_t x_stride, const float* weight, float eps, float* out,
             int64_t out_stride, int64_t rows, int64_t cols);

// out[r] = (x[r] - mean) / sqrt(var + eps) * weight + bias (bias may be null).
void LayerNorm(const float* x, int64_t x_stride, const float* weight, const float* bias, float eps,
               float* out, int64_t out_stride, int64_t rows, int64_t cols);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, cols + i]: the SwiGLU of a fused [gate; up]
// projection whose rows are 2*cols wide.
void SiluGateMul(const float* gate_up, int64_t gate_up_stride, float* out, int64_t out_stride,
                 int64_t rows, int64_t cols);

using kernels::ActivationKind;

// x = act(x) in place over rows × cols.
void ApplyActivation(ActivationKind kind, float* x, int64_t stride, int64_t rows, int64_t cols);

// x = clamp(x, -limit, limit) in place (MPT's clip_qkv).
void ClampInPlace(float* x, int64_t stride, int64_t rows, int64_t cols, float limit);

// x *= factor in place.
void ScaleInPlace(float* x, int64_t stride, int64_t rows, int64_t cols, float factor);

// out[r] += table[rows[r]]: absolute position embeddings. The caller validates the rows.
void AddTableRows(const float* table, int64_t dim, const int32_t* rows, int64_t num_rows,
                  float* out, int64_t out_stride);

// x[r] += bias for every row.
void AddBias(float* x, int64_t stride, const float* bias, int64_t rows, int64_t cols);

// out[r] = table[ids[r]]. The caller validates ids against the table size.
void EmbeddingLookup(const float* table, int64_t dim, const int32_t* ids, int64_t rows, float* out,
                     int64_t out_stride);

// Copies rows[i] of `src` to row i of `dst`.
void GatherRows(const float* src, int64_t src_stride, const int32_t* rows, int64_t num_rows,
                float* dst, int64_t dst_stride, int64_t cols);

// In-place numerically stable softmax of one row.
void SoftmaxInPlace(float* x, int64_t n);

}  // namespace ropewire::kernels::cpu
