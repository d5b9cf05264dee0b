#include "kernels/cuda/logits.h"

#include <climits>
#include <cmath>

#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/dense_device.cuh"

namespace ropewire::kernels::cuda {
namespace {

// Logit rows are f32 and the bias is 16-bit, so the two would want different vector widths; the
// add is a small fraction of the head GEMM's traffic, so it stays scalar (and coalesced).
template <typename T>
__global__ void AddBiasToLogitsKernel(float* logits, int64_t stride, const T* bias, int64_t rows,
                                      int64_t vocab) {
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    float* row_logits = logits + row * stride;
    for (int64_t i = first; i < vocab; i += step) row_logits[i] += dense::ToFloat(bias[i]);
  }
}

constexpr int kArgmaxThreads = 512;
constexpr int kNoIndex = INT_MAX;

// The running maximum in (value, then lowest index) order: a total order on non-NaN values, so
// any reduction tree gives the same answer as a left-to-right scan. NaN compares false both ways
// and is never kept.
__device__ __forceinline__ void KeepLarger(float& best, int& best_index, float value, int index) {
  if (value > best || (value == best && index < best_index)) {
    best = value;
    best_index = index;
  }
}

__device__ __forceinline__ void WarpArgmax(float& best, int& best_index) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, best, offset);
    const int other_index = __shfl_xor_sync(0xffffffffu, best_index, offset);
    KeepLarger(best, best_index, other, other_index);
  }
}

// One block per row (grid-stride over rows).
__global__ void __launch_bounds__(kArgmaxThreads)
    ArgmaxKernel(const float* logits, int64_t stride, int64_t rows, int cols, int32_t* token_ids) {
  __shared__ float warp_best[kArgmaxThreads / 32];
  __shared__ int warp_best_index[kArgmaxThreads / 32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* row_logits = logits + row * stride;
    float best = -INFINITY;
    int best_index = kNoIndex;  // loses every tie, so a row of -inf still yields its first index
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
      KeepLarger(best, best_index, row_logits[i], i);
    WarpArgmax(best, best_index);
    if (lane == 0) {
      warp_best[warp] = best;
      warp_best_index[warp] = best_index;
    }
    __syncthreads();
    if (warp == 0) {
      const bool has_partial = lane < static_cast<int>(blockDim.x / 32);
      best = has_partial ? warp_best[lane] : -INFINITY;
      best_index = has_partial ? warp_best_index[lane] : kNoIndex;
      WarpArgmax(best, best_index);
      if (lane == 0) token_ids[row] = best_index == kNoIndex ? 0 : best_index;
    }
    __syncthreads();  // the next row reuses the shared partials
  }
}

}  // namespace

template <typename T>
absl::Status AddBiasToLogits(float* logits, int64_t stride, const T* bias, int64_t rows,
                             int64_t vocab, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows("AddBiasToLogits", rows, vocab, stride); !s.ok()) {
    return s;
  }
  if (bias == nullptr) return absl::InvalidArgumentError("AddBiasToLogits: null bias");
  if (rows == 0 || vocab == 0) return absl::OkStatus();
  const dense::RowLaunch launch = dense::RowLaunchFor(rows, vocab);
  AddBiasToLogitsKernel<T>
      <<<launch.grid, launch.block, 0, stream>>>(logits, stride, bias, rows, vocab);
  return CudaStatus(cudaGetLastError(), "AddBiasToLogitsKernel launch");
}

absl::Status ArgmaxRows(const float* logits, int64_t stride, int64_t rows, int64_t cols,
                        int32_t* token_ids, cudaStream_t stream) {
  if (absl::Status s = dense::CheckRows("ArgmaxRows", rows, cols, stride); !s.ok()) return s;
  if (cols > INT_MAX) return absl::InvalidArgumentError("ArgmaxRows: more than 2^31 columns");
  if (rows == 0) return absl::OkStatus();
  const int64_t blocks = rows < (int64_t(1) << 20) ? rows : (int64_t(1) << 20);
  ArgmaxKernel<<<static_cast<unsigned>(blocks), kArgmaxThreads, 0, stream>>>(
      logits, stride, rows, static_cast<int>(cols), token_ids);
  return CudaStatus(cudaGetLastError(), "ArgmaxKernel launch");
}

template absl::Status AddBiasToLogits(float*, int64_t, const __nv_bfloat16*, int64_t, int64_t,
                                      cudaStream_t);
template absl::Status AddBiasToLogits(float*, int64_t, const __half*, int64_t, int64_t,
                                      cudaStream_t);

}  // namespace ropewire::kernels::cuda
