// Row-wise and element-wise CUDA operations of the forward pass, the device counterparts of
// kernels/cpu/elementwise.h: norms (with the fused residual add the decoder wants before its
// second norm), bias, clamp, activations and the SwiGLU gate. Storage type T is __nv_bfloat16 or
// __half; arithmetic and reductions are f32. Matrices are row-major with explicit row strides (in
// elements), so they can address column slices of fused projections. All pointers are device
// pointers; every function enqueues on `stream` and returns the launch error, if any, naming the
// kernel. Rows of `cols` elements whose pointers are 16-byte aligned with strides and `cols`
// multiples of 8 are read with 128-bit accesses; anything else takes a scalar path.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/activation.h"

namespace ropewire::kernels::cuda {

using kernels::ActivationKind;

enum class NormKind {
  kRmsNorm,    // x / sqrt(mean(x^2) + eps) * weight
  kLayerNorm,  // (x - mean) / sqrt(var + eps) * weight + bias (two-pass variance, as on the CPU)
};

// A norm's parameters on the device, each [cols]. `bias` is null for RMSNorm (where it is
// ignored) and for bias-free LayerNorm.
template <typename T>
struct NormParams {
  NormKind kind = NormKind::kRmsNorm;
  const T* weight = nullptr;
  const T* bias = nullptr;
  float eps = 1e-6f;
};

// out[r] = norm(x[r]) for `rows` rows. out may equal x (in place) but must not otherwise overlap.
template <typename T>
absl::Status Norm(const NormParams<T>& norm, const T* x, int64_t x_stride, T* out,
                  int64_t out_stride, int64_t rows, int64_t cols, cudaStream_t stream);

// x[r] = round_T(x[r] + residual[r] + residual_bias), then out[r] = norm(x[r]) of the value just
// stored, as an unfused add followed by Norm would compute it. residual_bias ([cols]) may be
// null; out may equal x.
template <typename T>
absl::Status AddResidualAndNorm(const NormParams<T>& norm, T* x, int64_t x_stride,
                                const T* residual, int64_t residual_stride, const T* residual_bias,
                                T* out, int64_t out_stride, int64_t rows, int64_t cols,
                                cudaStream_t stream);

// out[i] = norm(x[source_rows[i]]) for i < num_rows: the rows the LM head needs, gathered and
// normed in one pass. source_rows (device) are clamped into [0, x_rows), so a bad index reads a
// wrong row rather than out of bounds; callers validate them. out must not overlap x.
template <typename T>
absl::Status GatherAndNorm(const NormParams<T>& norm, const T* x, int64_t x_stride, int64_t x_rows,
                           const int32_t* source_rows, int64_t num_rows, T* out, int64_t out_stride,
                           int64_t cols, cudaStream_t stream);

// x[r] += bias ([cols]) in place.
template <typename T>
absl::Status AddBias(T* x, int64_t stride, const T* bias, int64_t rows, int64_t cols,
                     cudaStream_t stream);

// x = clamp(x + bias, -limit, limit) in place (MPT's clip_qkv after the qkv bias); bias may be
// null.
template <typename T>
absl::Status AddBiasAndClamp(T* x, int64_t stride, const T* bias, float limit, int64_t rows,
                             int64_t cols, cudaStream_t stream);

// x = act(x + bias) in place (a plain MLP's up projection); bias may be null.
template <typename T>
absl::Status AddBiasAndActivate(ActivationKind kind, T* x, int64_t stride, const T* bias,
                                int64_t rows, int64_t cols, cudaStream_t stream);

// out[r, i] = silu(g + bias[i]) * (u + bias[cols + i]) with g = gate_up[r, i] and
// u = gate_up[r, cols + i]: the SwiGLU of a fused [gate; up] projection whose rows are 2 * cols
// wide (gate_up_stride >= 2 * cols). bias ([2 * cols], the fused up bias) may be null. out must
// not overlap gate_up.
template <typename T>
absl::Status SiluGateMul(const T* gate_up, int64_t gate_up_stride, const T* bias, T* out,
                         int64_t out_stride, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
