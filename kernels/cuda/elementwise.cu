#include "kernels/cuda/elementwise.h"

#include <algorithm>

#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/dense_device.cuh"

namespace ropewire::kernels::cuda {
namespace {

using dense::BlockSum;
using dense::LoadFloats;
using dense::StoreFloats;

// ---------------------------------------------------------------------------------------------
// Norms: one block per row (grid-stride over rows). The row is read again for each pass instead
// of being held in registers or shared memory: a row of a hidden state is at most tens of KiB,
// so the re-reads hit L1/L2 and the kernel stays simple for any width.

template <typename T>
struct NormArgs {
  T* x;  // written only when `residual` is set
  int64_t x_stride;
  const int32_t* source_rows;  // null: row r of x; else row source_rows[r] (clamped)
  int64_t source_row_count;
  const T* residual;  // null: plain norm
  int64_t residual_stride;
  const T* residual_bias;
  const T* weight;
  const T* bias;
  float eps;
  bool layer_norm;
  T* out;
  int64_t out_stride;
  int64_t cols;
};

// v += residual (+ bias), rounded to T as it will be stored, so the statistics describe exactly
// the values a later unfused Norm would read back.
template <int N, typename T>
__device__ __forceinline__ void AddResidual(const NormArgs<T>& a, int64_t row, int64_t i,
                                            float (&v)[N]) {
  float r[N];
  LoadFloats<N>(a.residual + row * a.residual_stride + i, r);
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] += r[j];
  if (a.residual_bias != nullptr) {
    LoadFloats<N>(a.residual_bias + i, r);
#pragma unroll
    for (int j = 0; j < N; ++j) v[j] += r[j];
  }
#pragma unroll
  for (int j = 0; j < N; ++j) v[j] = dense::ToFloat(dense::FromFloat<T>(v[j]));
}

// Every pass walks the same indices per thread (first, first + step, ...), so a thread reads back
// only what it wrote itself: the residual pass needs no barrier before the statistics, and
// in-place output (out == x) is safe.
template <int N, typename T>
__device__ void NormRow(const NormArgs<T>& a, int64_t row, float* scratch) {
  const int64_t source =
      a.source_rows == nullptr ? row : dense::ClampIndex(a.source_rows[row], a.source_row_count);
  T* x = a.x + source * a.x_stride;
  const int64_t first = int64_t(threadIdx.x) * N;
  const int64_t step = int64_t(blockDim.x) * N;
  const float inv_cols = 1.0f / static_cast<float>(a.cols);

  float sum = 0.0f, sum_squares = 0.0f;
  for (int64_t i = first; i < a.cols; i += step) {
    float v[N];
    LoadFloats<N>(x + i, v);
    if (a.residual != nullptr) {
      AddResidual<N>(a, row, i, v);
      StoreFloats<N>(v, x + i);
    }
#pragma unroll
    for (int j = 0; j < N; ++j) {
      sum += v[j];
      sum_squares += v[j] * v[j];
    }
  }
  float mean = 0.0f, variance = 0.0f;
  if (a.layer_norm) {
    // Two-pass variance around the mean (as the CPU computes it): E[x^2] - mean^2 would cancel
    // catastrophically for rows whose mean is large against their spread.
    mean = BlockSum(sum, scratch) * inv_cols;
    float centered = 0.0f;
    for (int64_t i = first; i < a.cols; i += step) {
      float v[N];
      LoadFloats<N>(x + i, v);
#pragma unroll
      for (int j = 0; j < N; ++j) centered += (v[j] - mean) * (v[j] - mean);
    }
    variance = BlockSum(centered, scratch) * inv_cols;
  } else {
    variance = BlockSum(sum_squares, scratch) * inv_cols;  // the mean square
  }
  const float inv_std = rsqrtf(variance + a.eps);

  T* out = a.out + row * a.out_stride;
  for (int64_t i = first; i < a.cols; i += step) {
    float v[N], w[N], b[N] = {};
    LoadFloats<N>(x + i, v);
    LoadFloats<N>(a.weight + i, w);
    if (a.bias != nullptr) LoadFloats<N>(a.bias + i, b);
#pragma unroll
    for (int j = 0; j < N; ++j) v[j] = (v[j] - mean) * inv_std * w[j] + b[j];
    StoreFloats<N>(v, out + i);
  }
}

// 512 rather than 1024: at 1024 ptxas caps NormKernel at 32 registers and spills.
constexpr int kMaxNormThreads = 512;

template <typename T>
__global__ void __launch_bounds__(kMaxNormThreads)
    NormKernel(NormArgs<T> args, int64_t rows, bool vectorized) {
  __shared__ float scratch[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    if (vectorized) {
      NormRow<dense::kVectorWidth<T>>(args, row, scratch);
    } else {
      NormRow<1>(args, row, scratch);
    }
  }
}

template <typename T>
absl::Status LaunchNorm(const NormParams<T>& norm, const NormArgs<T>& args, int64_t rows,
                        cudaStream_t stream) {
  if (norm.weight == nullptr) return absl::InvalidArgumentError("Norm: null weight");
  if (rows == 0 || args.cols == 0) return absl::OkStatus();
  const int64_t cols = args.cols;
  const bool vectorized = dense::RowsVectorizable(args.x, args.x_stride, cols) &&
                          dense::RowsVectorizable(args.out, args.out_stride, cols) &&
                          dense::RowsVectorizable(args.residual, args.residual_stride, cols) &&
                          dense::RowsVectorizable(args.residual_bias, 0, cols) &&
                          dense::RowsVectorizable(args.weight, 0, cols) &&
                          dense::RowsVectorizable(args.bias, 0, cols);
  // One thread per vector (or element) up to 512, rounded to whole warps (BlockSum needs them).
  const int64_t units = vectorized ? cols / dense::kVectorWidth<T> : cols;
  const int64_t threads = std::min<int64_t>(kMaxNormThreads, (units + 31) / 32 * 32);
  const int64_t blocks = std::min<int64_t>(rows, int64_t(1) << 20);
  NormKernel<T><<<static_cast<unsigned>(blocks), static_cast<unsigned>(threads), 0, stream>>>(
      args, rows, vectorized);
  return CudaStatus(cudaGetLastError(), "NormKernel launch");
}

template <typename T>
NormArgs<T> BaseNormArgs(const NormParams<T>& norm, int64_t cols) {
  NormArgs<T> args{};
  args.weight = norm.weight;
  args.layer_norm = norm.kind == NormKind::kLayerNorm;
  args.bias = args.layer_norm ? norm.bias : nullptr;
  args.eps = norm.eps;
  args.cols = cols;
  return args;
}

// ---------------------------------------------------------------------------------------------
// In-place element-wise row operations: bias, then clamp or activation, in one pass.

enum class RowOp { kAddBias, kClamp, kActivate };

struct RowOpParams {
  RowOp op = RowOp::kAddBias;
  ActivationKind activation = ActivationKind::kGelu;
  float limit = 0.0f;
};

__device__ __forceinline__ float Activate(ActivationKind kind, float v) {
  switch (kind) {
    case ActivationKind::kGelu: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case ActivationKind::kGeluTanh:
      return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case ActivationKind::kBloomGelu:
      return v * 0.5f * (1.0f + tanhf(0.79788456f * v * (1.0f + 0.044715f * v * v)));
    case ActivationKind::kRelu: return fmaxf(v, 0.0f);
    case ActivationKind::kSilu: return v / (1.0f + expf(-v));
  }
  return v;
}

__device__ __forceinline__ float ApplyRowOp(const RowOpParams& p, float v) {
  switch (p.op) {
    case RowOp::kAddBias: return v;
    case RowOp::kClamp: return fminf(fmaxf(v, -p.limit), p.limit);
    case RowOp::kActivate: return Activate(p.activation, v);
  }
  return v;
}

template <int N, typename T>
__device__ void RowOpRows(T* x, int64_t stride, const T* bias, int64_t rows, int64_t cols,
                          const RowOpParams& p) {
  const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  const int64_t step = int64_t(gridDim.x) * blockDim.x * N;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    T* x_row = x + row * stride;
    for (int64_t i = first; i < cols; i += step) {
      float v[N], b[N] = {};
      LoadFloats<N>(x_row + i, v);
      if (bias != nullptr) LoadFloats<N>(bias + i, b);
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = ApplyRowOp(p, v[j] + b[j]);
      StoreFloats<N>(v, x_row + i);
    }
  }
}

template <typename T>
__global__ void RowOpKernel(T* x, int64_t stride, const T* bias, int64_t rows, int64_t cols,
                            RowOpParams p, bool vectorized) {
  if (vectorized) {
    RowOpRows<dense::kVectorWidth<T>>(x, stride, bias, rows, cols, p);
  } else {
    RowOpRows<1>(x, stride, bias, rows, cols, p);
  }
}

template <typename T>
absl::Status LaunchRowOp(const char* name, T* x, int64_t stride, const T* bias, int64_t rows,
                         int64_t cols, const RowOpParams& p, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows(name, rows, cols, stride); !s.ok()) return s;
  if (rows == 0 || cols == 0) return absl::OkStatus();
  const bool vectorized =
      dense::RowsVectorizable(x, stride, cols) && dense::RowsVectorizable(bias, 0, cols);
  const dense::RowLaunch launch =
      dense::RowLaunchFor(rows, vectorized ? cols / dense::kVectorWidth<T> : cols);
  RowOpKernel<T>
      <<<launch.grid, launch.block, 0, stream>>>(x, stride, bias, rows, cols, p, vectorized);
  return CudaStatus(cudaGetLastError(), "RowOpKernel launch");
}

// ---------------------------------------------------------------------------------------------
// SwiGLU over a fused [gate; up] row.

template <int N, typename T>
__device__ void SiluGateRows(const T* gate_up, int64_t gate_up_stride, const T* bias, T* out,
                             int64_t out_stride, int64_t rows, int64_t cols) {
  const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  const int64_t step = int64_t(gridDim.x) * blockDim.x * N;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const T* gate = gate_up + row * gate_up_stride;
    const T* up = gate + cols;
    T* out_row = out + row * out_stride;
    for (int64_t i = first; i < cols; i += step) {
      float g[N], u[N], gate_bias[N] = {}, up_bias[N] = {};
      LoadFloats<N>(gate + i, g);
      LoadFloats<N>(up + i, u);
      if (bias != nullptr) {
        LoadFloats<N>(bias + i, gate_bias);
        LoadFloats<N>(bias + cols + i, up_bias);
      }
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float gv = g[j] + gate_bias[j];
        g[j] = gv / (1.0f + expf(-gv)) * (u[j] + up_bias[j]);
      }
      StoreFloats<N>(g, out_row + i);
    }
  }
}

template <typename T>
__global__ void SiluGateKernel(const T* gate_up, int64_t gate_up_stride, const T* bias, T* out,
                               int64_t out_stride, int64_t rows, int64_t cols, bool vectorized) {
  if (vectorized) {
    SiluGateRows<dense::kVectorWidth<T>>(gate_up, gate_up_stride, bias, out, out_stride, rows,
                                         cols);
  } else {
    SiluGateRows<1>(gate_up, gate_up_stride, bias, out, out_stride, rows, cols);
  }
}

}  // namespace

template <typename T>
absl::Status Norm(const NormParams<T>& norm, const T* x, int64_t x_stride, T* out,
                  int64_t out_stride, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows("Norm", rows, cols, x_stride, out_stride); !s.ok()) {
    return s;
  }
  NormArgs<T> args = BaseNormArgs(norm, cols);
  args.x = const_cast<T*>(x);  // never written: there is no residual
  args.x_stride = x_stride;
  args.out = out;
  args.out_stride = out_stride;
  return LaunchNorm(norm, args, rows, stream);
}

template <typename T>
absl::Status AddResidualAndNorm(const NormParams<T>& norm, T* x, int64_t x_stride,
                                const T* residual, int64_t residual_stride, const T* residual_bias,
                                T* out, int64_t out_stride, int64_t rows, int64_t cols,
                                cudaStream_t stream) {
  if (absl::Status s =
          dense::CheckRows("AddResidualAndNorm", rows, cols, x_stride, residual_stride, out_stride);
      !s.ok()) {
    return s;
  }
  if (residual == nullptr) return absl::InvalidArgumentError("AddResidualAndNorm: null residual");
  NormArgs<T> args = BaseNormArgs(norm, cols);
  args.x = x;
  args.x_stride = x_stride;
  args.residual = residual;
  args.residual_stride = residual_stride;
  args.residual_bias = residual_bias;
  args.out = out;
  args.out_stride = out_stride;
  return LaunchNorm(norm, args, rows, stream);
}

template <typename T>
absl::Status GatherAndNorm(const NormParams<T>& norm, const T* x, int64_t x_stride, int64_t x_rows,
                           const int32_t* source_rows, int64_t num_rows, T* out, int64_t out_stride,
                           int64_t cols, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows("GatherAndNorm", num_rows, cols, x_stride, out_stride);
      !s.ok()) {
    return s;
  }
  if (num_rows > 0 && (x_rows <= 0 || source_rows == nullptr)) {
    return absl::InvalidArgumentError("GatherAndNorm: no source rows to gather from");
  }
  NormArgs<T> args = BaseNormArgs(norm, cols);
  args.x = const_cast<T*>(x);  // never written: there is no residual
  args.x_stride = x_stride;
  args.source_rows = source_rows;
  args.source_row_count = x_rows;
  args.out = out;
  args.out_stride = out_stride;
  return LaunchNorm(norm, args, num_rows, stream);
}

template <typename T>
absl::Status AddBias(T* x, int64_t stride, const T* bias, int64_t rows, int64_t cols,
                     cudaStream_t stream) {
  if (bias == nullptr) return absl::InvalidArgumentError("AddBias: null bias");
  return LaunchRowOp("AddBias", x, stride, bias, rows, cols, RowOpParams{}, stream);
}

template <typename T>
absl::Status AddBiasAndClamp(T* x, int64_t stride, const T* bias, float limit, int64_t rows,
                             int64_t cols, cudaStream_t stream) {
  if (!(limit >= 0.0f)) return absl::InvalidArgumentError("AddBiasAndClamp: negative limit");
  RowOpParams p;
  p.op = RowOp::kClamp;
  p.limit = limit;
  return LaunchRowOp("AddBiasAndClamp", x, stride, bias, rows, cols, p, stream);
}

template <typename T>
absl::Status AddBiasAndActivate(ActivationKind kind, T* x, int64_t stride, const T* bias,
                                int64_t rows, int64_t cols, cudaStream_t stream) {
  RowOpParams p;
  p.op = RowOp::kActivate;
  p.activation = kind;
  return LaunchRowOp("AddBiasAndActivate", x, stride, bias, rows, cols, p, stream);
}

template <typename T>
absl::Status SiluGateMul(const T* gate_up, int64_t gate_up_stride, const T* bias, T* out,
                         int64_t out_stride, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows("SiluGateMul", rows, cols, out_stride); !s.ok()) {
    return s;
  }
  if (gate_up_stride < 2 * cols) {
    return absl::InvalidArgumentError("SiluGateMul: gate_up rows narrower than 2 * cols");
  }
  if (rows == 0 || cols == 0) return absl::OkStatus();
  // The up half starts `cols` after the gate half, so a vectorised gate is a vectorised up.
  const bool vectorized = dense::RowsVectorizable(gate_up, gate_up_stride, cols) &&
                          dense::RowsVectorizable(bias, 0, cols) &&
                          dense::RowsVectorizable(out, out_stride, cols);
  const dense::RowLaunch launch =
      dense::RowLaunchFor(rows, vectorized ? cols / dense::kVectorWidth<T> : cols);
  SiluGateKernel<T><<<launch.grid, launch.block, 0, stream>>>(gate_up, gate_up_stride, bias, out,
                                                              out_stride, rows, cols, vectorized);
  return CudaStatus(cudaGetLastError(), "SiluGateKernel launch");
}

// The two storage types, and no others: each instantiation compiles every kernel above again.
#define ROPEWIRE_INSTANTIATE_ELEMENTWISE(T)                                                        \
  template absl::Status Norm(const NormParams<T>&, const T*, int64_t, T*, int64_t, int64_t,        \
                             int64_t, cudaStream_t);                                               \
  template absl::Status AddResidualAndNorm(const NormParams<T>&, T*, int64_t, const T*, int64_t,   \
                                           const T*, T*, int64_t, int64_t, int64_t, cudaStream_t); \
  template absl::Status GatherAndNorm(const NormParams<T>&, const T*, int64_t, int64_t,            \
                                      const int32_t*, int64_t, T*, int64_t, int64_t,               \
                                      cudaStream_t);                                               \
  template absl::Status AddBias(T*, int64_t, const T*, int64_t, int64_t, cudaStream_t);            \
  template absl::Status AddBiasAndClamp(T*, int64_t, const T*, float, int64_t, int64_t,            \
                                        cudaStream_t);                                             \
  template absl::Status AddBiasAndActivate(ActivationKind, T*, int64_t, const T*, int64_t,         \
                                           int64_t, cudaStream_t);                                 \
  template absl::Status SiluGateMul(const T*, int64_t, const T*, T*, int64_t, int64_t, int64_t,    \
                                    cudaStream_t);

ROPEWIRE_INSTANTIATE_ELEMENTWISE(__nv_bfloat16)
ROPEWIRE_INSTANTIATE_ELEMENTWISE(__half)
#undef ROPEWIRE_INSTANTIATE_ELEMENTWISE

}  // namespace ropewire::kernels::cuda
