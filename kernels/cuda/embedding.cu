#include "kernels/cuda/embedding.h"

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/dense_device.cuh"

namespace ropewire::kernels::cuda {
namespace {

using dense::ClampIndex;
using dense::LoadFloats;
using dense::StoreFloats;

// out[r] = source(r) * scale (+ position row), where source(r) is row source_rows[r] of `source`
// or, when `source` is null, out[r] itself (in place).
template <typename T>
struct RowSelectArgs {
  const T* source;
  int64_t source_stride;
  int64_t source_rows;
  const int32_t* source_row_ids;
  float scale;
  const T* positions;  // null: no position term
  int64_t position_rows;
  int32_t position_offset;
  const int32_t* position_ids;
  T* out;
  int64_t out_stride;
  int64_t rows;
  int64_t cols;
};

template <int N, typename T>
__device__ void SelectRows(const RowSelectArgs<T>& a) {
  const int64_t first = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * N;
  const int64_t step = int64_t(gridDim.x) * blockDim.x * N;
  for (int64_t row = blockIdx.y; row < a.rows; row += gridDim.y) {
    T* out = a.out + row * a.out_stride;
    const T* source = out;  // each thread reads then writes the same elements: in place is safe
    if (a.source != nullptr) {
      source = a.source + ClampIndex(a.source_row_ids[row], a.source_rows) * a.source_stride;
    }
    const T* position = nullptr;
    if (a.positions != nullptr) {
      const int64_t p = int64_t(a.position_ids[row]) + a.position_offset;
      position = a.positions + ClampIndex(p, a.position_rows) * a.cols;
    }
    for (int64_t i = first; i < a.cols; i += step) {
      float v[N], pv[N] = {};
      LoadFloats<N>(source + i, v);
      if (position != nullptr) LoadFloats<N>(position + i, pv);
#pragma unroll
      for (int j = 0; j < N; ++j) v[j] = v[j] * a.scale + pv[j];
      StoreFloats<N>(v, out + i);
    }
  }
}

template <typename T>
__global__ void SelectRowsKernel(RowSelectArgs<T> args, bool vectorized) {
  if (vectorized) {
    SelectRows<dense::kVectorWidth<T>>(args);
  } else {
    SelectRows<1>(args);
  }
}

template <typename T>
absl::Status LaunchSelectRows(const char* name, const RowSelectArgs<T>& a, cudaStream_t stream) {
  const int64_t source_stride = a.source != nullptr ? a.source_stride : a.cols;
  if (absl::Status s = dense::CheckRows(name, a.rows, a.cols, a.out_stride, source_stride);
      !s.ok()) {
    return s;
  }
  if (a.rows == 0 || a.cols == 0) return absl::OkStatus();
  if (a.source != nullptr && (a.source_rows <= 0 || a.source_row_ids == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty source table or null ids"));
  }
  if (a.positions != nullptr && (a.position_rows <= 0 || a.position_ids == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": empty position table or null ids"));
  }
  const bool vectorized = dense::RowsVectorizable(a.source, a.source_stride, a.cols) &&
                          dense::RowsVectorizable(a.positions, a.cols, a.cols) &&
                          dense::RowsVectorizable(a.out, a.out_stride, a.cols);
  const dense::RowLaunch launch =
      dense::RowLaunchFor(a.rows, vectorized ? a.cols / dense::kVectorWidth<T> : a.cols);
  SelectRowsKernel<T><<<launch.grid, launch.block, 0, stream>>>(a, vectorized);
  return CudaStatus(cudaGetLastError(), "SelectRowsKernel launch");
}

template <typename T>
RowSelectArgs<T> PositionArgs(const EmbeddingTables<T>& tables, const int32_t* position_ids) {
  RowSelectArgs<T> a{};
  a.scale = tables.scale;
  a.positions = tables.positions;
  a.position_rows = tables.position_rows;
  a.position_offset = tables.position_offset;
  a.position_ids = position_ids;
  return a;
}

}  // namespace

template <typename T>
absl::Status EmbedTokens(const EmbeddingTables<T>& tables, const int32_t* token_ids,
                         const int32_t* position_ids, int64_t rows, int64_t dim, T* out,
                         int64_t out_stride, cudaStream_t stream) {
  if (tables.tokens == nullptr) return absl::InvalidArgumentError("EmbedTokens: null token table");
  RowSelectArgs<T> a = PositionArgs(tables, position_ids);
  a.source = tables.tokens;
  a.source_stride = dim;
  a.source_rows = tables.vocab;
  a.source_row_ids = token_ids;
  a.out = out;
  a.out_stride = out_stride;
  a.rows = rows;
  a.cols = dim;
  return LaunchSelectRows("EmbedTokens", a, stream);
}

template <typename T>
absl::Status ScaleAndAddPositions(const EmbeddingTables<T>& tables, const int32_t* position_ids,
                                  int64_t rows, int64_t dim, T* x, int64_t stride,
                                  cudaStream_t stream) {
  RowSelectArgs<T> a = PositionArgs(tables, position_ids);
  a.out = x;
  a.out_stride = stride;
  a.rows = rows;
  a.cols = dim;
  return LaunchSelectRows("ScaleAndAddPositions", a, stream);
}

template <typename T>
absl::Status GatherRows(const T* src, int64_t src_stride, int64_t src_rows,
                        const int32_t* source_rows, int64_t num_rows, T* dst, int64_t dst_stride,
                        int64_t cols, cudaStream_t stream) {
  if (src == nullptr) return absl::InvalidArgumentError("GatherRows: null source");
  RowSelectArgs<T> a{};
  a.source = src;
  a.source_stride = src_stride;
  a.source_rows = src_rows;
  a.source_row_ids = source_rows;
  a.scale = 1.0f;
  a.out = dst;
  a.out_stride = dst_stride;
  a.rows = num_rows;
  a.cols = cols;
  return LaunchSelectRows("GatherRows", a, stream);
}

#define ROPEWIRE_INSTANTIATE_EMBEDDING(T)                                                        \
  template absl::Status EmbedTokens(const EmbeddingTables<T>&, const int32_t*, const int32_t*,   \
                                    int64_t, int64_t, T*, int64_t, cudaStream_t);                \
  template absl::Status ScaleAndAddPositions(const EmbeddingTables<T>&, const int32_t*, int64_t, \
                                             int64_t, T*, int64_t, cudaStream_t);                \
  template absl::Status GatherRows(const T*, int64_t, int64_t, const int32_t*, int64_t, T*,      \
                                   int64_t, int64_t, cudaStream_t);

ROPEWIRE_INSTANTIATE_EMBEDDING(__nv_bfloat16)
ROPEWIRE_INSTANTIATE_EMBEDDING(__half)
#undef ROPEWIRE_INSTANTIATE_EMBEDDING

}  // namespace ropewire::kernels::cuda
