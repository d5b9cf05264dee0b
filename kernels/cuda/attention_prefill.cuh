// The prefill path of paged attention (query_len > 1): causal, tiled, online softmax.
//
// A thread block handles PrefillRows(head_dim) query rows of one sequence and one KV head, rows
// flattened as query_index * group + head_in_group so GQA groups of any size share each staged
// key tile. Keys arrive in tiles of 32 through a two-stage cp.async pipeline (rows addressed one
// token at a time through the block table, so any block size and order works); each tile is
// rotated once by its positions into fp32 shared memory, then every warp scores its rows against
// it (lane = key), updates its online softmax and accumulates values for its channel pairs.
//
// Headroom: this first version multiplies on the CUDA cores. Long prompts are compute-bound, and
// tensor-core MMA (bf16/fp16 inputs, rotated keys rounded to the storage type) would be many times
// faster; so would skipping the masked half of the diagonal tiles per row instead of per warp.
#pragma once

#include "base/status_macros.h"
#include "kernels/cuda/attention_common.cuh"

namespace ropewire::kernels::cuda::attention {

template <int kHeadDim>
struct PrefillTile {
  static constexpr int kWarps = kPrefillWarps;
  static constexpr int kRowsPerWarp = PrefillRowsPerWarp(kHeadDim);
  static constexpr int kRows = PrefillRows(kHeadDim);
  static constexpr int kKeys = kPrefillTileKeys;
  static constexpr int kRowElems = kHeadDim + 8;   // staged rows padded by 16 bytes
  static constexpr int kKeyStride = kHeadDim + 4;  // rotated rows: 16 bytes of padding
  static constexpr int kChunks = kHeadDim / 8;
  static constexpr int kPairs = kHeadDim / 2;
  static constexpr int kPairSlots = (kPairs + 31) / 32;
  static_assert(kKeys == 32, "one key per lane");
};

// One warp's rows: which rows they are, and their softmax state. The query index and head of a
// row are recomputed where needed (RowQuery, RowHead) rather than held: registers are scarce here.
template <int kHeadDim>
struct PrefillRowState {
  using Tile = PrefillTile<kHeadDim>;
  int first_row;  // rows [first_row, row_end) of the sequence's flattened rows
  int row_end;
  int first_cache_index;  // cache index of the sequence's query 0
  int group;
  float max[Tile::kRowsPerWarp];
  float sum[Tile::kRowsPerWarp];
  float acc[Tile::kRowsPerWarp][Tile::kPairSlots][2];

  // Cache index of row r's query, -1 for rows past the sequence.
  __device__ int RowQuery(int r) const {
    const int row = first_row + r;
    return row < row_end ? first_cache_index + row / group : -1;
  }
  // Global query head of row r (of KV head kv_head).
  __device__ int RowHead(int r, int kv_head) const {
    return kv_head * group + (first_row + r) % group;
  }
};

// Shared memory of one prefill block (sizes as PrefillSharedBytes).
template <typename T, int kHeadDim>
struct PrefillShared {
  using Tile = PrefillTile<kHeadDim>;
  float* q;     // [kRows][kHeadDim], rotated and scaled
  float* keys;  // [kKeys][kKeyStride], rotated fp32
  float* p;     // [kWarps][kRowsPerWarp][kKeys]
  T* staged;    // [stage][K, V][kKeys][kRowElems]

  __device__ explicit PrefillShared(unsigned char* base) {
    q = reinterpret_cast<float*>(base);
    keys = q + Tile::kRows * kHeadDim;
    p = keys + Tile::kKeys * Tile::kKeyStride;
    staged = reinterpret_cast<T*>(p + Tile::kWarps * Tile::kRowsPerWarp * Tile::kKeys);
  }
  __device__ T* staged_keys(int stage) const {
    return staged + (stage * 2) * Tile::kKeys * Tile::kRowElems;
  }
  __device__ T* staged_values(int stage) const {
    return staged + (stage * 2 + 1) * Tile::kKeys * Tile::kRowElems;
  }
};

// Rotated, scaled queries of the block's rows [row_begin, row_end) into q (zeros past row_end).
template <typename T, int kHeadDim, PositionVariant kPos>
__device__ __forceinline__ void LoadPrefillQueries(const KernelCommon<T>& c, const SeqInfo& seq,
                                                   const DeviceRopeTableView& table, int kv_head,
                                                   int row_begin, int row_end, float* q, int warp,
                                                   int lane) {
  using Tile = PrefillTile<kHeadDim>;
  const int first_cache_index = seq.kv_len - seq.query_len;
  for (int r = warp; r < Tile::kRows; r += Tile::kWarps) {
    float* dst = q + r * kHeadDim;
    const int row = row_begin + r;
    if (row >= row_end) {
      for (int ch = lane; ch < kHeadDim; ch += 32) dst[ch] = 0.0f;
      continue;
    }
    const int query = row / c.group;
    const int head = kv_head * c.group + row % c.group;
    const int64_t position = int64_t(seq.position_offset) + first_cache_index + query;
    const float* rope_row =
        IsRope(kPos) ? RopeRow(table, position, c.position.rope_row_floats) : nullptr;
    const T* src = c.q + int64_t(seq.query_start + query) * c.q_stride + int64_t(head) * kHeadDim;
    LoadRotatedScaled<T, kPos>(src, kHeadDim, rope_row, c.position, c.score_scale, dst, lane);
  }
}

// Stages keys and values of tokens [k0, k0 + n) (whole block; rows n..31 zero).
template <typename T, int kHeadDim>
__device__ __forceinline__ void StagePrefillKv(const KernelCommon<T>& c, const int32_t* blocks,
                                               int kv_head, int k0, int n, T* k_dst, T* v_dst) {
  using Tile = PrefillTile<kHeadDim>;
  for (int i = threadIdx.x; i < Tile::kKeys * Tile::kChunks; i += blockDim.x) {
    const int row = i / Tile::kChunks;
    const int col = i % Tile::kChunks;
    const bool valid = row < n;
    const int64_t src = valid ? TokenOffset<kHeadDim>(c, blocks, kv_head, k0 + row) + col * 8 : 0;
    CopyAsync16(k_dst + row * Tile::kRowElems + col * 8, c.keys + src, valid);
    CopyAsync16(v_dst + row * Tile::kRowElems + col * 8, c.values + src, valid);
  }
}

// Rotates (RoPE) or converts the staged keys [0, n) of a tile to fp32; rows n..31 become zero.
// A warp per key row, lanes along the channels, so table rows are read coalesced.
template <typename T, int kHeadDim, PositionVariant kPos>
__device__ __forceinline__ void RotateStagedKeys(const PositionArgs& p,
                                                 const DeviceRopeTableView& table,
                                                 int64_t first_position, int n, const T* staged,
                                                 float* keys, int warp, int lane) {
  using Tile = PrefillTile<kHeadDim>;
  for (int t = warp; t < Tile::kKeys; t += Tile::kWarps) {
    float* dst = keys + t * Tile::kKeyStride;
    if (t >= n) {
      for (int ch = lane; ch < kHeadDim; ch += 32) dst[ch] = 0.0f;
      continue;
    }
    const float* rope_row =
        IsRope(kPos) ? RopeRow(table, first_position + t, p.rope_row_floats) : nullptr;
    LoadRotatedScaled<T, kPos>(staged + t * Tile::kRowElems, kHeadDim, rope_row, p, 1.0f, dst,
                               lane);
  }
}

// s[r] = q_r · k for the warp's rows against the key of this lane (its rotated row `key`).
template <int kHeadDim, int kRows>
__device__ __forceinline__ void PrefillScores(const float* key, const float* q, float (&s)[kRows]) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) s[r] = 0.0f;
#pragma unroll 4
  for (int ch = 0; ch < kHeadDim; ch += 4) {
    const float4 k = *reinterpret_cast<const float4*>(key + ch);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float4 qv = *reinterpret_cast<const float4*>(q + r * kHeadDim + ch);
      s[r] += qv.x * k.x + qv.y * k.y + qv.z * k.z + qv.w * k.w;
    }
  }
}

// Online softmax over one tile for each row (a full warp holds the row's 32 scores). A row may
// see no key of a tile (causal or window mask) before seeing any: its max stays -inf and the
// exponentials are taken against 0 so that nothing becomes NaN.
template <int kHeadDim>
__device__ __forceinline__ void PrefillSoftmaxTile(float (&s)[PrefillTile<kHeadDim>::kRowsPerWarp],
                                                   int lane, float* p_warp,
                                                   PrefillRowState<kHeadDim>& rows) {
  using Tile = PrefillTile<kHeadDim>;
#pragma unroll
  for (int r = 0; r < Tile::kRowsPerWarp; ++r) {
    float tile_max = s[r];
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, offset));
    }
    const float new_max = fmaxf(rows.max[r], tile_max);
    const float base = new_max == -INFINITY ? 0.0f : new_max;
    const float p = exp2f(s[r] - base);
    float tile_sum = p;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      tile_sum += __shfl_xor_sync(kFullMask, tile_sum, offset);
    }
    const float rescale = exp2f(rows.max[r] - base);
    rows.sum[r] = rows.sum[r] * rescale + tile_sum;
    rows.max[r] = new_max;
#pragma unroll
    for (int j = 0; j < Tile::kPairSlots; ++j) {
      rows.acc[r][j][0] *= rescale;
      rows.acc[r][j][1] *= rescale;
    }
    p_warp[r * Tile::kKeys + lane] = p;
  }
}

// acc[r] += Σ_t p[r][t] · v[t] for the lane's channel pairs (rows past the range are zero, p 0).
template <typename T, int kHeadDim>
__device__ __forceinline__ void PrefillAccumulateValues(const T* v_tile, const float* p_warp,
                                                        int lane, PrefillRowState<kHeadDim>& rows) {
  using Tile = PrefillTile<kHeadDim>;
#pragma unroll 2
  for (int t0 = 0; t0 < Tile::kKeys; t0 += 4) {
    float2 v[4][Tile::kPairSlots];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
#pragma unroll
      for (int j = 0; j < Tile::kPairSlots; ++j) {
        const int pair = lane + 32 * j;
        v[u][j] = pair < Tile::kPairs ? LoadPair(v_tile + (t0 + u) * Tile::kRowElems + 2 * pair)
                                      : make_float2(0.0f, 0.0f);
      }
    }
#pragma unroll
    for (int r = 0; r < Tile::kRowsPerWarp; ++r) {
      const float4 p = *reinterpret_cast<const float4*>(p_warp + r * Tile::kKeys + t0);
#pragma unroll
      for (int j = 0; j < Tile::kPairSlots; ++j) {
        rows.acc[r][j][0] += p.x * v[0][j].x + p.y * v[1][j].x + p.z * v[2][j].x + p.w * v[3][j].x;
        rows.acc[r][j][1] += p.x * v[0][j].y + p.y * v[1][j].y + p.z * v[2][j].y + p.w * v[3][j].y;
      }
    }
  }
}

// Scores one staged tile for the warp's rows and folds it into their state.
template <typename T, int kHeadDim, PositionVariant kPos>
__device__ __forceinline__ void PrefillAttendTile(const KernelCommon<T>& c, const SeqInfo& seq,
                                                  const PrefillShared<T, kHeadDim>& smem, int stage,
                                                  int k0, int n, int kv_head, int warp, int lane,
                                                  PrefillRowState<kHeadDim>& rows) {
  using Tile = PrefillTile<kHeadDim>;
  float s[Tile::kRowsPerWarp];
  PrefillScores<kHeadDim, Tile::kRowsPerWarp>(smem.keys + lane * Tile::kKeyStride,
                                              smem.q + warp * Tile::kRowsPerWarp * kHeadDim, s);
  const int key = k0 + lane;
  const int64_t key_position = int64_t(seq.position_offset) + key;
#pragma unroll
  for (int r = 0; r < Tile::kRowsPerWarp; ++r) {
    const int query = rows.RowQuery(r);
    const bool visible = query >= 0 && lane < n && key <= query &&
                         (c.sliding_window <= 0 || key > query - c.sliding_window);
    float bias = 0.0f;
    if constexpr (kPos == PositionVariant::kAlibi || kPos == PositionVariant::kRelativeBias) {
      const int head = rows.RowHead(r, kv_head);
      bias = ScoreBias<kPos>(c.position, c.num_heads, head, HeadSlope<kPos>(c.position, head),
                             int64_t(seq.position_offset) + query, key_position);
    }
    s[r] = visible ? s[r] + bias : -INFINITY;
  }
  float* p_warp = smem.p + warp * Tile::kRowsPerWarp * Tile::kKeys;
  PrefillSoftmaxTile<kHeadDim>(s, lane, p_warp, rows);
  __syncwarp();
  PrefillAccumulateValues<T, kHeadDim>(smem.staged_values(stage), p_warp, lane, rows);
}

template <typename T, int kHeadDim>
__device__ __forceinline__ void StorePrefillRows(const KernelCommon<T>& c, const SeqInfo& seq,
                                                 int kv_head, int lane,
                                                 const PrefillRowState<kHeadDim>& rows) {
  using Tile = PrefillTile<kHeadDim>;
#pragma unroll
  for (int r = 0; r < Tile::kRowsPerWarp; ++r) {
    const int query_index = rows.RowQuery(r);
    if (query_index < 0) continue;
    const int query = query_index - rows.first_cache_index;
    T* dst = c.out + int64_t(seq.query_start + query) * c.out_stride +
             int64_t(rows.RowHead(r, kv_head)) * kHeadDim;
    const float inv = 1.0f / rows.sum[r];  // every row sees at least its own key
#pragma unroll
    for (int j = 0; j < Tile::kPairSlots; ++j) {
      const int pair = lane + 32 * j;
      if (pair < Tile::kPairs) {
        *reinterpret_cast<PairOf<T>*>(dst + 2 * pair) =
            FromFloat2<T>(make_float2(rows.acc[r][j][0] * inv, rows.acc[r][j][1] * inv));
      }
    }
  }
}

// The warp's rows and an empty softmax state.
template <typename T, int kHeadDim>
__device__ __forceinline__ void InitPrefillRows(const KernelCommon<T>& c, const SeqInfo& seq,
                                                int warp_row_begin, int row_end,
                                                PrefillRowState<kHeadDim>& rows) {
  using Tile = PrefillTile<kHeadDim>;
  rows.first_row = warp_row_begin;
  rows.row_end = row_end;
  rows.first_cache_index = seq.kv_len - seq.query_len;
  rows.group = c.group;
#pragma unroll
  for (int r = 0; r < Tile::kRowsPerWarp; ++r) {
    rows.max[r] = -INFINITY;
    rows.sum[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < Tile::kPairSlots; ++j) rows.acc[r][j][0] = rows.acc[r][j][1] = 0.0f;
  }
}

template <typename T, int kHeadDim, PositionVariant kPos>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    PagedPrefillKernel(const PrefillArgs<T> args) {
  using Tile = PrefillTile<kHeadDim>;
  const KernelCommon<T>& c = args.common;
  extern __shared__ __align__(16) unsigned char shared_base[];
  const PrefillShared<T, kHeadDim> smem(shared_base);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;

  const PrefillItem item = args.items[blockIdx.x];
  const int kv_head = blockIdx.y;
  const SeqInfo seq = c.seqs[item.seq];
  const int first_cache_index = seq.kv_len - seq.query_len;
  const int row_begin = item.row_begin;
  const int row_end = min(row_begin + Tile::kRows, seq.query_len * c.group);
  DeviceRopeTableView table{};
  if constexpr (IsRope(kPos)) table = SequenceRopeTable(c.position, item.seq);
  LoadPrefillQueries<T, kHeadDim, kPos>(c, seq, table, kv_head, row_begin, row_end, smem.q, warp,
                                        lane);

  // Keys some row of the block sees, and those some row of this warp sees.
  const int window = c.sliding_window;
  const int key_end = first_cache_index + (row_end - 1) / c.group + 1;
  const int key_begin =
      window > 0 ? max(0, first_cache_index + row_begin / c.group - window + 1) : 0;
  const int warp_row_begin = row_begin + warp * Tile::kRowsPerWarp;
  const int warp_row_end = min(warp_row_begin + Tile::kRowsPerWarp, row_end);
  const bool warp_has_rows = warp_row_begin < warp_row_end;
  const int warp_key_end = warp_has_rows ? first_cache_index + (warp_row_end - 1) / c.group + 1 : 0;
  const int warp_key_begin =
      window > 0 ? max(0, first_cache_index + warp_row_begin / c.group - window + 1) : 0;
  PrefillRowState<kHeadDim> rows;
  InitPrefillRows<T, kHeadDim>(c, seq, warp_row_begin, warp_row_end, rows);

  const int32_t* blocks = c.block_tables + int64_t(item.seq) * c.max_blocks_per_seq;
  const int num_tiles = (key_end - key_begin + Tile::kKeys - 1) / Tile::kKeys;
  StagePrefillKv<T, kHeadDim>(c, blocks, kv_head, key_begin, min(Tile::kKeys, key_end - key_begin),
                              smem.staged_keys(0), smem.staged_values(0));
  CopyAsyncCommit();
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int stage = tile & 1;
    const int k0 = key_begin + tile * Tile::kKeys;
    const int n = min(Tile::kKeys, key_end - k0);
    // Tile `tile` has landed for every thread; every warp is done with tile - 1 (its rotated keys,
    // probabilities and staged values), whose stage the next copies overwrite.
    CopyAsyncWaitAll();
    __syncthreads();
    if (tile + 1 < num_tiles) {
      const int next = k0 + Tile::kKeys;
      StagePrefillKv<T, kHeadDim>(c, blocks, kv_head, next, min(Tile::kKeys, key_end - next),
                                  smem.staged_keys(stage ^ 1), smem.staged_values(stage ^ 1));
      CopyAsyncCommit();
    }
    RotateStagedKeys<T, kHeadDim, kPos>(c.position, table, int64_t(seq.position_offset) + k0, n,
                                        smem.staged_keys(stage), smem.keys, warp, lane);
    __syncthreads();
    if (warp_has_rows && k0 < warp_key_end && k0 + n > warp_key_begin) {
      PrefillAttendTile<T, kHeadDim, kPos>(c, seq, smem, stage, k0, n, kv_head, warp, lane, rows);
    }
  }
  StorePrefillRows<T, kHeadDim>(c, seq, kv_head, lane, rows);
}

// Calls visit(kernel) with the prefill kernel compiled for `variant` and `head_dim`.
template <typename T, int kHeadDim, typename Visit>
absl::Status VisitPrefillKernelForDim(PositionVariant variant, Visit&& visit) {
  switch (variant) {
    case PositionVariant::kNone:
      return visit(&PagedPrefillKernel<T, kHeadDim, PositionVariant::kNone>);
    case PositionVariant::kRopeNeox:
      return visit(&PagedPrefillKernel<T, kHeadDim, PositionVariant::kRopeNeox>);
    case PositionVariant::kRopeInterleaved:
      return visit(&PagedPrefillKernel<T, kHeadDim, PositionVariant::kRopeInterleaved>);
    case PositionVariant::kAlibi:
      return visit(&PagedPrefillKernel<T, kHeadDim, PositionVariant::kAlibi>);
    case PositionVariant::kRelativeBias:
      return visit(&PagedPrefillKernel<T, kHeadDim, PositionVariant::kRelativeBias>);
  }
  return absl::InternalError("prefill attention: unknown position variant");
}

template <typename T>
absl::Status LaunchPrefill(PositionVariant variant, int head_dim, const PrefillArgs<T>& args,
                           const LaunchShape& shape) {
  auto launch = [&](auto kernel) -> absl::Status {
    if (shape.shared_bytes > 48 * 1024) {
      RETURN_IF_ERROR(
          CudaStatus(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(shape.shared_bytes)),
                     "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)"));
    }
    kernel<<<shape.grid, shape.block, shape.shared_bytes, shape.stream>>>(args);
    return CudaStatus(cudaGetLastError(), "PagedPrefillKernel launch");
  };
  switch (head_dim) {
    case 64: return VisitPrefillKernelForDim<T, 64>(variant, launch);
    case 80: return VisitPrefillKernelForDim<T, 80>(variant, launch);
    case 96: return VisitPrefillKernelForDim<T, 96>(variant, launch);
    case 128: return VisitPrefillKernelForDim<T, 128>(variant, launch);
    case 256: return VisitPrefillKernelForDim<T, 256>(variant, launch);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("prefill attention: head_dim ", head_dim, " has no compiled kernel"));
}

}  // namespace ropewire::kernels::cuda::attention
