// Plain views of the paged KV cache and of a ragged batch, identical for every backend
// (DESIGN.md decision 3).
#pragma once

#include <cstdint>
#include <type_traits>

namespace ropewire::kernels {

// Storage type of the KV cache's elements.
enum class KvDtype : uint8_t { kF32, kBF16, kF16 };

inline constexpr int KvDtypeBytes(KvDtype dtype) { return dtype == KvDtype::kF32 ? 4 : 2; }

// Shape of one layer's pages. Both K and V pages are laid out
// [num_blocks][num_kv_heads][block_size][head_dim] so one head's keys of a block are contiguous.
struct KvGeometry {
  int num_blocks = 0;
  int block_size = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  KvDtype dtype = KvDtype::kF32;  // strides below count elements of this type

  int64_t HeadStride() const { return int64_t(block_size) * head_dim; }
  int64_t BlockStride() const { return HeadStride() * num_kv_heads; }
  int64_t LayerElements() const { return BlockStride() * num_blocks; }
};

// One layer's pages. K is stored exactly as the projection produced it (un-rotated).
template <typename T>
struct KvLayerView {
  T* keys = nullptr;
  T* values = nullptr;

  KvLayerView() = default;
  KvLayerView(T* k, T* v) : keys(k), values(v) {}
  // A view of typed pages as untyped (the CPU kernels read KvGeometry::dtype), or as const.
  template <typename U, typename = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  KvLayerView(const KvLayerView<U>& other) : keys(other.keys), values(other.values) {}
};

// The sequences of one step. Rows of the query/output matrices are grouped per sequence.
struct RaggedBatchView {
  int num_seqs = 0;
  const int32_t* query_start = nullptr;      // [num_seqs + 1] first row of each sequence
  const int32_t* kv_len = nullptr;           // [num_seqs] cached tokens after this step's append
  const int32_t* position_offset = nullptr;  // [num_seqs] position of cache index 0
  const int32_t* block_tables = nullptr;     // [num_seqs * max_blocks_per_seq]
  int max_blocks_per_seq = 0;

  int QueryLen(int s) const { return query_start[s + 1] - query_start[s]; }
  const int32_t* BlockTable(int s) const { return block_tables + int64_t(s) * max_blocks_per_seq; }
};

}  // namespace ropewire::kernels
