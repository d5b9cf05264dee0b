#include <cuda_runtime.h>

#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/rms_norm.h"

namespace ropewire::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void RmsNormKernel(const float* __restrict__ x, const float* __restrict__ weight,
                              float eps, float* __restrict__ out, int64_t cols) {
  const float* row = x + blockIdx.x * cols;
  float* out_row = out + blockIdx.x * cols;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) sum += row[i] * row[i];
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x < 32) {
    sum = threadIdx.x < kThreads / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (threadIdx.x == 0) partial[0] = sum;
  }
  __syncthreads();
  const float inv_rms = rsqrtf(partial[0] / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) out_row[i] = weight[i] * (row[i] * inv_rms);
}

}  // namespace

absl::Status RmsNormF32(const float* x, const float* weight, float eps, float* out, int64_t rows,
                        int64_t cols, void* stream) {
  if (rows == 0) return absl::OkStatus();
  RmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, weight, eps, out, cols);
  return CudaStatus(cudaGetLastError(), "RmsNormKernel launch");
}

}  // namespace ropewire::kernels::cuda
