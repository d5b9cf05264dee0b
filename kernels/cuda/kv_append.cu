// WriteKv on the GPU: a step's new key/value rows into their paged slots (paged_attention.h).
#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/paged_attention.h"

namespace ropewire::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 4096;  // grid-stride beyond this

template <typename T>
struct WriteKvArgs {
  const T* k;
  int64_t k_stride;
  const T* v;
  int64_t v_stride;
  const int32_t* slots;
  int64_t rows;
  int num_kv_heads;
  int head_dim;
  int block_size;
  int64_t block_stride;
  int64_t head_stride;
  int64_t num_slots;
  T* keys;
  T* values;
};

// Copies kVector elements at a time: 8 (one 16-byte chunk) when every address allows it.
template <int kVector, typename T>
__device__ __forceinline__ void CopyElements(T* dst, const T* src) {
  if constexpr (kVector == 8) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  } else {
    *dst = *src;
  }
}

// One thread per (row, KV head, chunk of kVector elements).
template <typename T, int kVector>
__global__ void __launch_bounds__(kThreads) WriteKvKernel(const WriteKvArgs<T> a) {
  const int64_t chunks_per_head = a.head_dim / kVector;
  const int64_t chunks_per_row = chunks_per_head * a.num_kv_heads;
  const int64_t total = a.rows * chunks_per_row;
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t row = i / chunks_per_row;
    const int64_t within_row = i - row * chunks_per_row;
    const int64_t head = within_row / chunks_per_head;
    const int64_t element = (within_row - head * chunks_per_head) * kVector;
    const int64_t slot = a.slots[row];
    if (slot < 0 || slot >= a.num_slots) continue;  // padding rows, or past the pages
    const int64_t block = slot / a.block_size;
    const int64_t dst = block * a.block_stride + head * a.head_stride +
                        (slot - block * a.block_size) * a.head_dim + element;
    const int64_t in_row = head * a.head_dim + element;
    CopyElements<kVector>(a.keys + dst, a.k + row * a.k_stride + in_row);
    CopyElements<kVector>(a.values + dst, a.v + row * a.v_stride + in_row);
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

template <typename T>
absl::Status WriteKv(const T* k, int64_t k_stride, const T* v, int64_t v_stride,
                     const int32_t* slots, int64_t rows, const KvGeometry& geometry,
                     KvLayerView<T> layer, cudaStream_t stream) {
  if (rows < 0) return absl::InvalidArgumentError("WriteKv: negative row count");
  if (rows == 0) return absl::OkStatus();
  const int64_t width = int64_t(geometry.num_kv_heads) * geometry.head_dim;
  if (geometry.num_blocks <= 0 || geometry.block_size <= 0 || width <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "WriteKv: KV geometry of ", geometry.num_blocks, " blocks of ", geometry.block_size, ", ",
        geometry.num_kv_heads, " heads of ", geometry.head_dim));
  }
  if (k == nullptr || v == nullptr || slots == nullptr || layer.keys == nullptr ||
      layer.values == nullptr) {
    return absl::InvalidArgumentError("WriteKv: null input, slots or pages");
  }
  if (k_stride < width || v_stride < width) {
    return absl::InvalidArgumentError(absl::StrCat("WriteKv: k_stride ", k_stride, " and v_stride ",
                                                   v_stride, " must be at least ", width));
  }
  WriteKvArgs<T> args{};
  args.k = k;
  args.k_stride = k_stride;
  args.v = v;
  args.v_stride = v_stride;
  args.slots = slots;
  args.rows = rows;
  args.num_kv_heads = geometry.num_kv_heads;
  args.head_dim = geometry.head_dim;
  args.block_size = geometry.block_size;
  args.block_stride = geometry.BlockStride();
  args.head_stride = geometry.HeadStride();
  args.num_slots = int64_t(geometry.num_blocks) * geometry.block_size;
  args.keys = layer.keys;
  args.values = layer.values;
  const bool vector = geometry.head_dim % 8 == 0 && k_stride % 8 == 0 && v_stride % 8 == 0 &&
                      Aligned16(k) && Aligned16(v) && Aligned16(layer.keys) &&
                      Aligned16(layer.values);
  const int64_t work = rows * width / (vector ? 8 : 1);
  const unsigned blocks = unsigned(std::min<int64_t>(kMaxBlocks, (work + kThreads - 1) / kThreads));
  if (vector) {
    WriteKvKernel<T, 8><<<blocks, kThreads, 0, stream>>>(args);
  } else {
    WriteKvKernel<T, 1><<<blocks, kThreads, 0, stream>>>(args);
  }
  return CudaStatus(cudaGetLastError(), "WriteKvKernel launch");
}

template absl::Status WriteKv<__nv_bfloat16>(const __nv_bfloat16* k, int64_t k_stride,
                                             const __nv_bfloat16* v, int64_t v_stride,
                                             const int32_t* slots, int64_t rows,
                                             const KvGeometry& geometry,
                                             KvLayerView<__nv_bfloat16> layer, cudaStream_t stream);
template absl::Status WriteKv<__half>(const __half* k, int64_t k_stride, const __half* v,
                                      int64_t v_stride, const int32_t* slots, int64_t rows,
                                      const KvGeometry& geometry, KvLayerView<__half> layer,
                                      cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
