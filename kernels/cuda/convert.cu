#include "kernels/cuda/convert.h"

#include <algorithm>

#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/dense_device.cuh"

namespace ropewire::kernels::cuda {
namespace {

using dense::FromFloat;
using dense::ToFloat;

// Four elements per access: 16 bytes of f32 and 8 bytes of a 16-bit type, so the f32 side
// (the wider one) gets full 128-bit accesses.
constexpr int kConvertWidth = 4;
constexpr int kConvertThreads = 256;
constexpr int64_t kUploadChunkFloats = int64_t(16) << 20;  // 64 MiB of f32 staging

// Grid-stride over `count` elements: vectors of kConvertWidth first when `vectorized` (both
// pointers aligned to their vector size), then the remaining count % kConvertWidth (or all of
// them) one element per thread.
template <typename From, typename To>
__global__ void ConvertKernel(const From* __restrict__ in, To* __restrict__ out, int64_t count,
                              bool vectorized) {
  constexpr int N = kConvertWidth;
  const int64_t thread = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t threads = int64_t(gridDim.x) * blockDim.x;
  const int64_t vector_end = vectorized ? count / N * N : 0;
  for (int64_t i = thread * N; i < vector_end; i += threads * N) {
    float v[N];
    dense::LoadFloats<N>(in + i, v);
    dense::StoreFloats<N>(v, out + i);
  }
  for (int64_t i = vector_end + thread; i < count; i += threads)
    out[i] = FromFloat<To>(ToFloat(in[i]));
}

template <typename From, typename To>
absl::Status LaunchConvert(const From* in, To* out, int64_t count, cudaStream_t stream) {
  if (count < 0) return absl::InvalidArgumentError("Convert: negative element count");
  if (count == 0) return absl::OkStatus();
  const bool vectorized = dense::IsAligned(in, kConvertWidth * sizeof(From)) &&
                          dense::IsAligned(out, kConvertWidth * sizeof(To));
  const int64_t units = vectorized ? (count + kConvertWidth - 1) / kConvertWidth : count;
  const int64_t blocks =
      std::clamp<int64_t>((units + kConvertThreads - 1) / kConvertThreads, 1, 65535);
  ConvertKernel<From, To>
      <<<static_cast<unsigned>(blocks), kConvertThreads, 0, stream>>>(in, out, count, vectorized);
  return CudaStatus(cudaGetLastError(), "ConvertKernel launch");
}

}  // namespace

template <typename T>
absl::Status ConvertFromF32(const float* in, T* out, int64_t count, cudaStream_t stream) {
  return LaunchConvert(in, out, count, stream);
}

template <typename T>
absl::Status ConvertToF32(const T* in, float* out, int64_t count, cudaStream_t stream) {
  return LaunchConvert(in, out, count, stream);
}

template <typename T>
absl::StatusOr<DeviceBuffer> UploadAs(const float* host, int64_t count, cudaStream_t stream) {
  if (count < 0) return absl::InvalidArgumentError("UploadAs: negative element count");
  auto result = DeviceBuffer::Allocate(size_t(count) * sizeof(T));
  if (!result.ok()) return result.status();
  const int64_t chunk = std::min(count, kUploadChunkFloats);
  auto staging = DeviceBuffer::Allocate(size_t(chunk) * sizeof(float));
  if (!staging.ok()) return staging.status();
  for (int64_t begin = 0; begin < count; begin += chunk) {
    const int64_t n = std::min(chunk, count - begin);
    // The copy and the conversion are ordered on `stream`, so the next chunk's copy cannot
    // overwrite the staging buffer before this chunk's conversion has read it.
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging->get(), host + begin, size_t(n) * sizeof(float),
                                         cudaMemcpyHostToDevice, stream));
    absl::Status converted =
        ConvertFromF32(staging->get<float>(), result->get<T>() + begin, n, stream);
    if (!converted.ok()) return converted;
  }
  // The staging buffer is freed on return: the stream must be done with it.
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return result;
}

template absl::Status ConvertFromF32(const float*, __nv_bfloat16*, int64_t, cudaStream_t);
template absl::Status ConvertFromF32(const float*, __half*, int64_t, cudaStream_t);
template absl::Status ConvertToF32(const __nv_bfloat16*, float*, int64_t, cudaStream_t);
template absl::Status ConvertToF32(const __half*, float*, int64_t, cudaStream_t);
template absl::StatusOr<DeviceBuffer> UploadAs<__nv_bfloat16>(const float*, int64_t, cudaStream_t);
template absl::StatusOr<DeviceBuffer> UploadAs<__half>(const float*, int64_t, cudaStream_t);

}  // namespace ropewire::kernels::cuda
