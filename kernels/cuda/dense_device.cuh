// Device-side helpers shared by the dense CUDA kernels (convert, elementwise, embedding, logits):
// f32 conversion of the storage types, 16-byte vector access, block reductions and the launch
// shapes of row kernels. Included from .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ropewire::kernels::cuda::dense {

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }

// Round-to-nearest-even, the rounding the host side (cuda_bf16.h / cuda_fp16.h) uses too.
template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}

// Elements of T in one 16-byte (128-bit) memory access.
template <typename T>
inline constexpr int kVectorWidth = static_cast<int>(16 / sizeof(T));

template <int Bytes>
struct RawVector;
template <>
struct RawVector<16> {
  using type = uint4;
};
template <>
struct RawVector<8> {
  using type = uint2;
};
template <>
struct RawVector<4> {
  using type = uint32_t;
};
template <>
struct RawVector<2> {
  using type = uint16_t;
};

// Loads N consecutive elements as floats with a single access of N * sizeof(T) bytes; `p` must
// be aligned to that size (callers check this on the host before choosing N > 1).
template <int N, typename T>
__device__ __forceinline__ void LoadFloats(const T* p, float (&out)[N]) {
  using Raw = typename RawVector<N * sizeof(T)>::type;
  union {
    Raw raw;
    T values[N];
  } pack;
  pack.raw = *reinterpret_cast<const Raw*>(p);
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = ToFloat(pack.values[j]);
}

template <int N, typename T>
__device__ __forceinline__ void StoreFloats(const float (&in)[N], T* p) {
  using Raw = typename RawVector<N * sizeof(T)>::type;
  union {
    Raw raw;
    T values[N];
  } pack;
#pragma unroll
  for (int j = 0; j < N; ++j) pack.values[j] = FromFloat<T>(in[j]);
  *reinterpret_cast<Raw*>(p) = pack.raw;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of `v` over the block, returned to every thread (each warp reduces the per-warp partials
// itself, in the same order, so all threads hold the identical value). blockDim.x must be a
// multiple of 32 and at most 1024; `scratch` is 32 floats of shared memory, reusable by the next
// call because of the trailing barrier.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < static_cast<int>(blockDim.x / 32) ? scratch[lane] : 0.0f;
  total = WarpSum(total);
  __syncthreads();
  return total;
}

// An index clamped into [0, count): kernels that gather rows by caller-given indices never read
// out of bounds, even when a caller failed to validate (count must be positive).
__device__ __forceinline__ int64_t ClampIndex(int64_t index, int64_t count) {
  return index < 0 ? 0 : index >= count ? count - 1 : index;
}

// Host side.

inline bool IsAligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// Whether rows of `cols` elements of T at `p` with row stride `stride` can all be read with
// 16-byte accesses: a null pointer (an absent operand) does not prevent it.
template <typename T>
bool RowsVectorizable(const T* p, int64_t stride, int64_t cols) {
  constexpr int64_t width = kVectorWidth<T>;
  if (cols % width != 0) return false;
  return p == nullptr || (IsAligned(p, 16) && stride % width == 0);
}

// Launch shape of the element-wise row kernels: blockIdx.y strides over rows, blockIdx.x and the
// threads over `units_per_row` (vectors or elements) of a row. Both are grid-stride loops in the
// kernels, so the caps only bound the grid, never the coverage.
struct RowLaunch {
  dim3 grid;
  dim3 block;
};

inline RowLaunch RowLaunchFor(int64_t rows, int64_t units_per_row) {
  constexpr int64_t kThreads = 256;
  constexpr int64_t kMaxGridY = 65535;
  constexpr int64_t kMaxGridX = 4096;
  const int64_t blocks_x = std::min(kMaxGridX, (units_per_row + kThreads - 1) / kThreads);
  return {dim3(static_cast<unsigned>(std::max<int64_t>(blocks_x, 1)),
               static_cast<unsigned>(std::min(kMaxGridY, std::max<int64_t>(rows, 1)))),
          dim3(static_cast<unsigned>(kThreads))};
}

// Shapes are checked before every launch: negative sizes or strides narrower than a row are
// caller bugs that would otherwise read or write out of bounds. Unused strides stay at their
// default. (Plain parameters rather than an initializer_list: nvcc 13 mistranslates a braced
// list of dependent member accesses inside templates.)
inline absl::Status CheckRows(const char* op, int64_t rows, int64_t cols, int64_t stride_a,
                              int64_t stride_b = INT64_MAX, int64_t stride_c = INT64_MAX) {
  if (rows < 0 || cols < 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": negative shape ", rows, " x ", cols));
  }
  if (stride_a < cols || stride_b < cols || stride_c < cols) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": a row stride is narrower than ", cols, " columns"));
  }
  return absl::OkStatus();
}

}  // namespace ropewire::kernels::cuda::dense
