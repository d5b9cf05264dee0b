// The decode path of paged attention (query_len 1) and the combine of split decodes.
//
// A thread block handles one partition of one sequence's keys (flash-decoding: long contexts are
// split so that even one sequence fills the GPU) for up to kMaxDecodeWarps KV heads, one warp per
// KV head and, in that warp, up to kMaxQueryHeadsPerWarp of its query heads (GQA: every K/V byte
// is read once for all of them). The keys go through shared memory in tiles of 16 with a
// two-stage cp.async pipeline: 16-byte chunks, each tile row one token's contiguous head vector,
// so the loads are coalesced whatever the block order. The RoPE rows of a tile's 16 positions are
// staged once per block and shared by all its warps: the table is as many bytes per position as
// one KV head's keys and values, so each warp reading its own copy would double the traffic.
//
// In a warp, lane l scores key l % 16 over half of the channels (chunks alternate between the
// two half-warps), one shuffle joins the halves; rotation happens on the staged un-rotated key
// in registers. The probabilities go through shared memory and each lane accumulates
// probability-weighted values for its channel pairs. Scores are in base 2 (the query carries
// softmax_scale * log2 e) so the softmax uses exp2.
//
// Headroom: tensor-core MMA for the scores of large groups, a third pipeline stage, and NeoX
// partial rotary with R/2 not a multiple of 8 (GPT-NeoX-20B's 24 of 96), which takes a scalar path.
#pragma once

#include "base/status_macros.h"
#include "kernels/cuda/attention_common.cuh"

namespace ropewire::kernels::cuda::attention {

template <int kHeadDim>
struct DecodeTile {
  static constexpr int kKeys = kDecodeTileKeys;
  static constexpr int kRowElems = kHeadDim + 8;         // staged rows padded by 16 bytes
  static constexpr int kChunks = kHeadDim / 8;           // 16-byte chunks per row
  static constexpr int kPairs = kHeadDim / 2;            // channel pairs per row
  static constexpr int kPairSlots = (kPairs + 31) / 32;  // pairs per lane when accumulating
  static_assert(kHeadDim % 16 == 0, "rows must be whole pairs of 16-byte chunks");
  static_assert(kKeys * kChunks % 32 == 0, "a tile must be whole chunks per lane");
};

// A warp's softmax state for its query heads: running max and sum (base 2), and the
// unnormalised output of the lane's channel pairs (lane + 32 * j).
template <int kPairSlots>
struct DecodeState {
  float max[kMaxQueryHeadsPerWarp];
  float sum[kMaxQueryHeadsPerWarp];
  float acc[kMaxQueryHeadsPerWarp][kPairSlots][2];
};
template <int kHeadDim>
using DecodeStateFor = DecodeState<DecodeTile<kHeadDim>::kPairSlots>;

// Stages the keys and values of tokens [k0, k0 + n) of one KV head (one warp; rows n..15 zero).
template <typename T, int kHeadDim>
__device__ __forceinline__ void StageDecodeKv(const KernelCommon<T>& c, const int32_t* blocks,
                                              int kv_head, int k0, int n, T* k_dst, T* v_dst,
                                              int lane) {
  using Tile = DecodeTile<kHeadDim>;
  long long row_offset = 0;
  if (lane < n) row_offset = TokenOffset<kHeadDim>(c, blocks, kv_head, k0 + lane);
#pragma unroll
  for (int i = 0; i < Tile::kKeys * Tile::kChunks / 32; ++i) {
    const int chunk = lane + 32 * i;
    const int row = chunk / Tile::kChunks;
    const int col = chunk % Tile::kChunks;
    const long long offset = __shfl_sync(kFullMask, row_offset, row);
    const bool valid = row < n;
    const int64_t src = valid ? offset + col * 8 : 0;
    CopyAsync16(k_dst + row * Tile::kRowElems + col * 8, c.keys + src, valid);
    CopyAsync16(v_dst + row * Tile::kRowElems + col * 8, c.values + src, valid);
  }
}

// Stages the RoPE rows of positions [first_position, first_position + n) (whole block; rows
// n..keys-1 zero).
__device__ __forceinline__ void StageRopeRows(const DeviceRopeTableView& table, int row_floats,
                                              int64_t first_position, int n, int keys, float* dst,
                                              int dst_stride) {
  const int chunks = row_floats / 4;
  for (int i = threadIdx.x; i < keys * chunks; i += blockDim.x) {
    const int row = i / chunks;
    const int col = i % chunks;
    const bool valid = row < n;
    const float* src =
        valid ? RopeRow(table, first_position + row, row_floats) + col * 4 : table.rows;
    CopyAsync16(dst + row * dst_stride + col * 4, src, valid);
  }
}

// s[h] += q_h · k, no rotation, over this half-warp's chunks of [chunk_begin, kHeadDim / 8):
// chunk_begin + part, then every second one.
template <typename T, int kHeadDim>
__device__ __forceinline__ void ScorePlainChunks(const T* key_row, const float* q, int heads,
                                                 int chunk_begin, int part,
                                                 float (&s)[kMaxQueryHeadsPerWarp]) {
  for (int chunk = chunk_begin + part; chunk < kHeadDim / 8; chunk += 2) {
    float k[8];
    LoadEight(key_row + chunk * 8, k);
#pragma unroll
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h < heads) s[h] += DotEight(q + h * kHeadDim + chunk * 8, k);
    }
  }
}

// NeoX layout with R/2 a multiple of 8: chunk j of the first half pairs with chunk j of the
// second, so a lane rotates eight whole pairs from two 16-byte loads.
template <typename T, int kHeadDim>
__device__ __forceinline__ void ScoreNeoxChunks(const T* key_row, const float* rope_row,
                                                const PositionArgs& p, const float* q, int heads,
                                                int part, float (&s)[kMaxQueryHeadsPerWarp]) {
  const int half = p.rotary_dim / 2;
  for (int chunk = part; chunk < half / 8; chunk += 2) {
    const int a0 = chunk * 8;
    float ka[8], kb[8], cos_k[8], sin_k[8];
    LoadEight(key_row + a0, ka);
    LoadEight(key_row + a0 + half, kb);
    LoadEightFloats(rope_row + a0, cos_k);
    LoadEightFloats(rope_row + p.rope_sin_offset + a0, sin_k);
    float ra[8], rb[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      ra[i] = ka[i] * cos_k[i] - kb[i] * sin_k[i];
      rb[i] = kb[i] * cos_k[i] + ka[i] * sin_k[i];
    }
#pragma unroll
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h < heads) {
        const float* qh = q + h * kHeadDim;
        s[h] += DotEight(qh + a0, ra) + DotEight(qh + a0 + half, rb);
      }
    }
  }
  ScorePlainChunks<T, kHeadDim>(key_row, q, heads, p.rotary_dim / 8, part, s);
}

// NeoX layout with any even R: one pair at a time (pairs alternate between the half-warps), then
// the pass-through channels two at a time.
template <typename T, int kHeadDim>
__device__ __forceinline__ void ScoreNeoxPairs(const T* key_row, const float* rope_row,
                                               const PositionArgs& p, const float* q, int heads,
                                               int part, float (&s)[kMaxQueryHeadsPerWarp]) {
  const int half = p.rotary_dim / 2;
  for (int k = part; k < half; k += 2) {
    const float a = ToFloat(key_row[k]);
    const float b = ToFloat(key_row[k + half]);
    const float cos_k = rope_row[k];
    const float sin_k = rope_row[p.rope_sin_offset + k];
    const float ra = a * cos_k - b * sin_k;
    const float rb = b * cos_k + a * sin_k;
#pragma unroll
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h < heads) s[h] += q[h * kHeadDim + k] * ra + q[h * kHeadDim + k + half] * rb;
    }
  }
  for (int pair = half + part; pair < kHeadDim / 2; pair += 2) {
    const float2 k = LoadPair(key_row + 2 * pair);
#pragma unroll
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h < heads) {
        s[h] += q[h * kHeadDim + 2 * pair] * k.x + q[h * kHeadDim + 2 * pair + 1] * k.y;
      }
    }
  }
}

// GPT-J layout: pairs are adjacent, so every chunk holds four whole pairs; chunks that reach into
// the rotary dim rotate the pairs below R/2.
template <typename T, int kHeadDim>
__device__ __forceinline__ void ScoreInterleavedChunks(const T* key_row, const float* rope_row,
                                                       const PositionArgs& p, const float* q,
                                                       int heads, int part,
                                                       float (&s)[kMaxQueryHeadsPerWarp]) {
  const int half = p.rotary_dim / 2;
  for (int chunk = part; chunk < kHeadDim / 8; chunk += 2) {
    float k[8];
    LoadEight(key_row + chunk * 8, k);
    if (chunk * 8 < p.rotary_dim) {
      // The row's padding (zeros) covers the pairs past R/2 of the last rotary chunk.
      const float* cos_row = rope_row + chunk * 4;
      const float* sin_row = rope_row + p.rope_sin_offset + chunk * 4;
      const float4 cos4 = *reinterpret_cast<const float4*>(cos_row);
      const float4 sin4 = *reinterpret_cast<const float4*>(sin_row);
      const float cos_k[4] = {cos4.x, cos4.y, cos4.z, cos4.w};
      const float sin_k[4] = {sin4.x, sin4.y, sin4.z, sin4.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if (chunk * 4 + i < half) {
          const float a = k[2 * i];
          const float b = k[2 * i + 1];
          k[2 * i] = a * cos_k[i] - b * sin_k[i];
          k[2 * i + 1] = b * cos_k[i] + a * sin_k[i];
        }
      }
    }
#pragma unroll
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h < heads) s[h] += DotEight(q + h * kHeadDim + chunk * 8, k);
    }
  }
}

// This half-warp's share of q_h · rotate(k) for the key whose staged row is `key_row`.
template <typename T, int kHeadDim, PositionVariant kPos>
__device__ __forceinline__ void DecodeScores(const T* key_row, const float* rope_row,
                                             const PositionArgs& p, const float* q, int heads,
                                             int part, float (&s)[kMaxQueryHeadsPerWarp]) {
  if constexpr (kPos == PositionVariant::kRopeNeox) {
    if (p.rotary_dim % 16 == 0) {
      ScoreNeoxChunks<T, kHeadDim>(key_row, rope_row, p, q, heads, part, s);
    } else {
      ScoreNeoxPairs<T, kHeadDim>(key_row, rope_row, p, q, heads, part, s);
    }
  } else if constexpr (kPos == PositionVariant::kRopeInterleaved) {
    ScoreInterleavedChunks<T, kHeadDim>(key_row, rope_row, p, q, heads, part, s);
  } else {
    ScorePlainChunks<T, kHeadDim>(key_row, q, heads, 0, part, s);
  }
}

// Online softmax over one tile. Lanes l and l + 16 hold the same scores (key l % 16, -inf when
// masked); every tile holds at least one visible key, so the new max is finite.
template <int kPairSlots>
__device__ __forceinline__ void DecodeSoftmaxTile(const float (&s)[kMaxQueryHeadsPerWarp],
                                                  int heads, int key, bool writer, float* p_smem,
                                                  DecodeState<kPairSlots>& state) {
#pragma unroll
  for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
    if (h >= heads) continue;
    float tile_max = s[h];
#pragma unroll
    for (int offset = kDecodeTileKeys / 2; offset > 0; offset /= 2) {
      tile_max = fmaxf(tile_max, __shfl_xor_sync(kFullMask, tile_max, offset));
    }
    const float new_max = fmaxf(state.max[h], tile_max);
    const float p = exp2f(s[h] - new_max);
    float tile_sum = p;
#pragma unroll
    for (int offset = kDecodeTileKeys / 2; offset > 0; offset /= 2) {
      tile_sum += __shfl_xor_sync(kFullMask, tile_sum, offset);
    }
    const float rescale = exp2f(state.max[h] - new_max);  // 0 on the first tile (max -inf)
    state.sum[h] = state.sum[h] * rescale + tile_sum;
    state.max[h] = new_max;
#pragma unroll
    for (int j = 0; j < kPairSlots; ++j) {
      state.acc[h][j][0] *= rescale;
      state.acc[h][j][1] *= rescale;
    }
    if (writer) p_smem[h * kDecodeTileKeys + key] = p;
  }
}

// acc[h] += Σ_t p[h][t] · v[t] over the tile's 16 rows (rows past the range are zero and have
// p = 0), for the lane's channel pairs.
template <typename T, int kHeadDim>
__device__ __forceinline__ void DecodeAccumulateValues(const T* v_tile, const float* p_smem,
                                                       int heads, int lane,
                                                       DecodeStateFor<kHeadDim>& state) {
  using Tile = DecodeTile<kHeadDim>;
#pragma unroll
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
    for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
      if (h >= heads) continue;
      const float4 p = *reinterpret_cast<const float4*>(p_smem + h * Tile::kKeys + t0);
#pragma unroll
      for (int j = 0; j < Tile::kPairSlots; ++j) {
        state.acc[h][j][0] += p.x * v[0][j].x + p.y * v[1][j].x + p.z * v[2][j].x + p.w * v[3][j].x;
        state.acc[h][j][1] += p.x * v[0][j].y + p.y * v[1][j].y + p.z * v[2][j].y + p.w * v[3][j].y;
      }
    }
  }
}

// Writes the normalised output (single partition) or the partial result (split sequence).
template <typename T, int kHeadDim>
__device__ __forceinline__ void StoreDecodeResult(const DecodeArgs<T>& args, const DecodeItem& item,
                                                  const SeqInfo& seq, int first_head, int heads,
                                                  int lane, const DecodeStateFor<kHeadDim>& state) {
  using Tile = DecodeTile<kHeadDim>;
  const KernelCommon<T>& c = args.common;
#pragma unroll
  for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
    if (h >= heads) continue;
    const int head = first_head + h;
    if (item.partial < 0) {
      const float inv = 1.0f / state.sum[h];
      T* dst = c.out + int64_t(seq.query_start) * c.out_stride + int64_t(head) * kHeadDim;
#pragma unroll
      for (int j = 0; j < Tile::kPairSlots; ++j) {
        const int pair = lane + 32 * j;
        if (pair < Tile::kPairs) {
          *reinterpret_cast<PairOf<T>*>(dst + 2 * pair) =
              FromFloat2<T>(make_float2(state.acc[h][j][0] * inv, state.acc[h][j][1] * inv));
        }
      }
    } else {
      const int64_t slot = int64_t(item.partial) * c.num_heads + head;
      if (lane == 0) {
        args.partial_ml[2 * slot] = state.max[h];
        args.partial_ml[2 * slot + 1] = state.sum[h];
      }
      float* dst = args.partial_acc + slot * kHeadDim;
#pragma unroll
      for (int j = 0; j < Tile::kPairSlots; ++j) {
        const int pair = lane + 32 * j;
        if (pair < Tile::kPairs) {
          *reinterpret_cast<float2*>(dst + 2 * pair) =
              make_float2(state.acc[h][j][0], state.acc[h][j][1]);
        }
      }
    }
  }
}

// Shared memory of one decode block (sizes as DecodeSharedBytes).
template <typename T, int kHeadDim>
struct DecodeShared {
  T* kv;        // this warp's [stage][K, V][key][kRowElems]
  float* rope;  // [stage][key][table_stride], shared by the block
  float* q;     // this warp's [heads_per_warp][kHeadDim], rotated and scaled
  float* p;     // this warp's [kMaxQueryHeadsPerWarp][key]

  __device__ DecodeShared(unsigned char* base, int warps, int warp, int heads_per_warp,
                          int table_stride, bool rope_staged) {
    constexpr size_t kStage = DecodeKvStageElements(kHeadDim);
    T* kv_all = reinterpret_cast<T*>(base);
    float* rope_all = reinterpret_cast<float*>(kv_all + size_t(warps) * 4 * kStage);
    float* q_all = rope_all + (rope_staged ? 2 * kDecodeTileKeys * table_stride : 0);
    float* p_all = q_all + warps * heads_per_warp * kHeadDim;
    kv = kv_all + size_t(warp) * 4 * kStage;
    rope = rope_all;
    q = q_all + warp * heads_per_warp * kHeadDim;
    p = p_all + warp * kMaxQueryHeadsPerWarp * kDecodeTileKeys;
  }
  __device__ T* keys(int stage) const { return kv + (stage * 2) * DecodeKvStageElements(kHeadDim); }
  __device__ T* values(int stage) const {
    return kv + (stage * 2 + 1) * DecodeKvStageElements(kHeadDim);
  }
};

// What one warp of a decode block works on: its KV head, its query heads (global indices
// first_head ... first_head + heads - 1) and their ALiBi slopes, the query's position, and which
// key and which half of the channels each lane scores.
struct DecodeWarp {
  int kv_head;
  bool active;  // false for warps past the last KV head of the last chunk
  int first_head;
  int heads;
  int64_t position_offset;
  int64_t query_position;
  float slope[kMaxQueryHeadsPerWarp];
  int lane;
  int key;   // lane % 16
  int part;  // lane / 16
};

template <typename T, PositionVariant kPos>
__device__ __forceinline__ DecodeWarp MakeDecodeWarp(const DecodeArgs<T>& args, const SeqInfo& seq,
                                                     int warps, int warp, int lane) {
  const KernelCommon<T>& c = args.common;
  DecodeWarp w;
  w.kv_head = (blockIdx.y % args.kv_chunks) * warps + warp;
  w.active = w.kv_head < c.num_kv_heads;
  const int group_offset = (blockIdx.y / args.kv_chunks) * args.heads_per_warp;
  w.first_head = w.kv_head * c.group + group_offset;
  w.heads = min(args.heads_per_warp, c.group - group_offset);
  w.position_offset = seq.position_offset;
  w.query_position = w.position_offset + seq.kv_len - 1;
#pragma unroll
  for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
    w.slope[h] = w.active && h < w.heads ? HeadSlope<kPos>(c.position, w.first_head + h) : 0.0f;
  }
  w.lane = lane;
  w.key = lane % kDecodeTileKeys;
  w.part = lane / kDecodeTileKeys;
  return w;
}

template <int kPairSlots>
__device__ __forceinline__ void ResetDecodeState(DecodeState<kPairSlots>& state) {
#pragma unroll
  for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
    state.max[h] = -INFINITY;
    state.sum[h] = 0.0f;
#pragma unroll
    for (int j = 0; j < kPairSlots; ++j) state.acc[h][j][0] = state.acc[h][j][1] = 0.0f;
  }
}

// Scores the staged tile `stage` (keys k0 ... k0 + n - 1) for the warp's query heads and folds
// it into their softmax state.
template <typename T, int kHeadDim, PositionVariant kPos>
__device__ __forceinline__ void DecodeAttendTile(const KernelCommon<T>& c,
                                                 const DecodeShared<T, kHeadDim>& smem,
                                                 int table_stride, int stage, int k0, int n,
                                                 const DecodeWarp& w,
                                                 DecodeStateFor<kHeadDim>& state) {
  using Tile = DecodeTile<kHeadDim>;
  float s[kMaxQueryHeadsPerWarp] = {};
  const float* rope_row =
      IsRope(kPos) ? smem.rope + (stage * Tile::kKeys + w.key) * table_stride : nullptr;
  DecodeScores<T, kHeadDim, kPos>(smem.keys(stage) + w.key * Tile::kRowElems, rope_row, c.position,
                                  smem.q, w.heads, w.part, s);
  const int64_t key_position = w.position_offset + k0 + w.key;
#pragma unroll
  for (int h = 0; h < kMaxQueryHeadsPerWarp; ++h) {
    if (h >= w.heads) continue;
    s[h] += __shfl_xor_sync(kFullMask, s[h], Tile::kKeys);  // join the two halves' channels
    s[h] = w.key < n ? s[h] + ScoreBias<kPos>(c.position, c.num_heads, w.first_head + h, w.slope[h],
                                              w.query_position, key_position)
                     : -INFINITY;
  }
  DecodeSoftmaxTile(s, w.heads, w.key, w.part == 0, smem.p, state);
  __syncwarp();  // probabilities written by lanes 0-15, read by all
  DecodeAccumulateValues<T, kHeadDim>(smem.values(stage), smem.p, w.heads, w.lane, state);
}

template <typename T, int kHeadDim, PositionVariant kPos>
__global__ void __launch_bounds__(kMaxDecodeWarps * 32)
    PagedDecodeKernel(const DecodeArgs<T> args) {
  using Tile = DecodeTile<kHeadDim>;
  constexpr bool kRope = IsRope(kPos);
  const KernelCommon<T>& c = args.common;
  extern __shared__ __align__(16) unsigned char shared_base[];
  const int warps = blockDim.x / 32;
  const DecodeItem item = args.items[blockIdx.x];
  const SeqInfo seq = c.seqs[item.seq];
  const DecodeWarp w =
      MakeDecodeWarp<T, kPos>(args, seq, warps, int(threadIdx.x / 32), int(threadIdx.x % 32));
  const DecodeShared<T, kHeadDim> smem(shared_base, warps, threadIdx.x / 32, args.heads_per_warp,
                                       args.table_stride, kRope);
  DeviceRopeTableView table{};
  if constexpr (kRope) table = SequenceRopeTable(c.position, item.seq);
  if (w.active) {
    const T* q_row = c.q + int64_t(seq.query_start) * c.q_stride;
    const float* rope_row =
        kRope ? RopeRow(table, w.query_position, c.position.rope_row_floats) : nullptr;
    for (int h = 0; h < w.heads; ++h) {
      LoadRotatedScaled<T, kPos>(q_row + int64_t(w.first_head + h) * kHeadDim, kHeadDim, rope_row,
                                 c.position, c.score_scale, smem.q + h * kHeadDim, w.lane);
    }
  }

  const int32_t* blocks = c.block_tables + int64_t(item.seq) * c.max_blocks_per_seq;
  const int num_tiles = (item.key_end - item.key_begin + Tile::kKeys - 1) / Tile::kKeys;
  // Stages tile `tile` into `stage`: this warp's K/V rows and (all threads) the RoPE rows.
  auto stage_tile = [&](int tile, int stage) {
    const int k0 = item.key_begin + tile * Tile::kKeys;
    const int n = min(Tile::kKeys, item.key_end - k0);
    if (w.active) {
      StageDecodeKv<T, kHeadDim>(c, blocks, w.kv_head, k0, n, smem.keys(stage), smem.values(stage),
                                 w.lane);
    }
    if constexpr (kRope) {
      StageRopeRows(table, c.position.rope_row_floats, w.position_offset + k0, n, Tile::kKeys,
                    smem.rope + stage * Tile::kKeys * args.table_stride, args.table_stride);
    }
    CopyAsyncCommit();
  };

  DecodeState<Tile::kPairSlots> state;
  ResetDecodeState(state);
  stage_tile(0, 0);
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int stage = tile & 1;
    // Tile `tile` has landed for every thread, and every warp is done with tile - 1, whose stage
    // the next copies overwrite.
    CopyAsyncWaitAll();
    __syncthreads();
    if (tile + 1 < num_tiles) stage_tile(tile + 1, stage ^ 1);
    if (!w.active) continue;  // still at every barrier: the RoPE rows are staged by all
    const int k0 = item.key_begin + tile * Tile::kKeys;
    DecodeAttendTile<T, kHeadDim, kPos>(c, smem, args.table_stride, stage, k0,
                                        min(Tile::kKeys, item.key_end - k0), w, state);
  }
  if (w.active) {
    StoreDecodeResult<T, kHeadDim>(args, item, seq, w.first_head, w.heads, w.lane, state);
  }
}

// One block per (split sequence, query head): out = Σ_p acc_p 2^(m_p - M) / Σ_p l_p 2^(m_p - M).
template <typename T>
__global__ void __launch_bounds__(kCombineThreads)
    CombinePartitionsKernel(const CombineArgs<T> args) {
  const CombineItem item = args.items[blockIdx.x];
  const int head = blockIdx.y;
  const SeqInfo seq = args.seqs[item.seq];
  const int64_t first_slot = int64_t(item.first_partial) * args.num_heads + head;
  float max_score = -INFINITY;
  for (int p = 0; p < item.num_partitions; ++p) {
    max_score = fmaxf(max_score, args.partial_ml[2 * (first_slot + int64_t(p) * args.num_heads)]);
  }
  T* dst = args.out + int64_t(seq.query_start) * args.out_stride + int64_t(head) * args.head_dim;
  for (int pair = threadIdx.x; pair < args.head_dim / 2; pair += blockDim.x) {
    float sum = 0.0f, a0 = 0.0f, a1 = 0.0f;
    for (int p = 0; p < item.num_partitions; ++p) {
      const int64_t slot = first_slot + int64_t(p) * args.num_heads;
      const float weight = exp2f(args.partial_ml[2 * slot] - max_score);
      sum += args.partial_ml[2 * slot + 1] * weight;
      const float2 acc =
          *reinterpret_cast<const float2*>(args.partial_acc + slot * args.head_dim + 2 * pair);
      a0 += weight * acc.x;
      a1 += weight * acc.y;
    }
    const float inv = 1.0f / sum;
    *reinterpret_cast<PairOf<T>*>(dst + 2 * pair) = FromFloat2<T>(make_float2(a0 * inv, a1 * inv));
  }
}

// Calls visit(kernel) with the decode kernel compiled for `variant` and `head_dim`.
template <typename T, int kHeadDim, typename Visit>
absl::Status VisitDecodeKernelForDim(PositionVariant variant, Visit&& visit) {
  switch (variant) {
    case PositionVariant::kNone:
      return visit(&PagedDecodeKernel<T, kHeadDim, PositionVariant::kNone>);
    case PositionVariant::kRopeNeox:
      return visit(&PagedDecodeKernel<T, kHeadDim, PositionVariant::kRopeNeox>);
    case PositionVariant::kRopeInterleaved:
      return visit(&PagedDecodeKernel<T, kHeadDim, PositionVariant::kRopeInterleaved>);
    case PositionVariant::kAlibi:
      return visit(&PagedDecodeKernel<T, kHeadDim, PositionVariant::kAlibi>);
    case PositionVariant::kRelativeBias:
      return visit(&PagedDecodeKernel<T, kHeadDim, PositionVariant::kRelativeBias>);
  }
  return absl::InternalError("decode attention: unknown position variant");
}

template <typename T, typename Visit>
absl::Status VisitDecodeKernel(PositionVariant variant, int head_dim, Visit&& visit) {
  switch (head_dim) {
    case 64: return VisitDecodeKernelForDim<T, 64>(variant, visit);
    case 80: return VisitDecodeKernelForDim<T, 80>(variant, visit);
    case 96: return VisitDecodeKernelForDim<T, 96>(variant, visit);
    case 128: return VisitDecodeKernelForDim<T, 128>(variant, visit);
    case 256: return VisitDecodeKernelForDim<T, 256>(variant, visit);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("decode attention: head_dim ", head_dim, " has no compiled kernel"));
}

// Kernels needing more than 48 KiB of dynamic shared memory must opt in, per kernel.
template <typename Kernel>
absl::Status AllowSharedBytes(Kernel kernel, size_t shared_bytes) {
  if (shared_bytes <= 48 * 1024) return absl::OkStatus();
  return CudaStatus(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(shared_bytes)),
                    "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
}

template <typename T>
absl::Status LaunchDecode(PositionVariant variant, int head_dim, const DecodeArgs<T>& args,
                          const LaunchShape& shape) {
  return VisitDecodeKernel<T>(variant, head_dim, [&](auto kernel) -> absl::Status {
    RETURN_IF_ERROR(AllowSharedBytes(kernel, shape.shared_bytes));
    kernel<<<shape.grid, shape.block, shape.shared_bytes, shape.stream>>>(args);
    return CudaStatus(cudaGetLastError(), "PagedDecodeKernel launch");
  });
}

template <typename T>
absl::Status DecodeBlocksPerSm(PositionVariant variant, int head_dim, const LaunchShape& shape,
                               int* blocks) {
  return VisitDecodeKernel<T>(variant, head_dim, [&](auto kernel) -> absl::Status {
    RETURN_IF_ERROR(AllowSharedBytes(kernel, shape.shared_bytes));
    return CudaStatus(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                          blocks, kernel, static_cast<int>(shape.block.x), shape.shared_bytes),
                      "cudaOccupancyMaxActiveBlocksPerMultiprocessor(PagedDecodeKernel)");
  });
}

template <typename T>
absl::Status LaunchCombine(const CombineArgs<T>& args, const LaunchShape& shape) {
  CombinePartitionsKernel<T><<<shape.grid, shape.block, 0, shape.stream>>>(args);
  return CudaStatus(cudaGetLastError(), "CombinePartitionsKernel launch");
}

}  // namespace ropewire::kernels::cuda::attention
