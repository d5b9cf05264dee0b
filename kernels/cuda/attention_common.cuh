// Device helpers of the paged-attention kernels (attention_decode.cuh, attention_prefill.cuh):
// storage conversions, cp.async staging, addressing of the pages, RoPE rows, the rotated and
// scaled query, and the score biases of ALiBi and T5. nvcc only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/cuda_status.h"

namespace ropewire::kernels::cuda::attention {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
struct PairType;
template <>
struct PairType<__nv_bfloat16> {
  using Type = __nv_bfloat162;
};
template <>
struct PairType<__half> {
  using Type = __half2;
};
template <typename T>
using PairOf = typename PairType<T>::Type;

__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float2 ToFloat2(__nv_bfloat162 x) { return __bfloat1622float2(x); }
__device__ __forceinline__ float2 ToFloat2(__half2 x) { return __half22float2(x); }

template <typename T>
__device__ __forceinline__ PairOf<T> FromFloat2(float2 x);
template <>
__device__ __forceinline__ __nv_bfloat162 FromFloat2<__nv_bfloat16>(float2 x) {
  return __float22bfloat162_rn(x);
}
template <>
__device__ __forceinline__ __half2 FromFloat2<__half>(float2 x) {
  return __float22half2_rn(x);
}

// Two consecutive elements (4-byte aligned) as floats.
template <typename T>
__device__ __forceinline__ float2 LoadPair(const T* src) {
  return ToFloat2(*reinterpret_cast<const PairOf<T>*>(src));
}

// Eight consecutive elements (one 16-byte aligned chunk) as floats: one 16-byte load, then each
// 32-bit word reinterpreted as a pair with memcpy (a register move; reading the uint4 through a
// pair pointer would be type punning the optimiser may break).
template <typename T>
__device__ __forceinline__ void LoadEight(const T* src, float (&dst)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    PairOf<T> pair;
    memcpy(&pair, &words[i], sizeof(pair));
    const float2 f = ToFloat2(pair);
    dst[2 * i] = f.x;
    dst[2 * i + 1] = f.y;
  }
}

// Eight consecutive floats (16-byte aligned).
__device__ __forceinline__ void LoadEightFloats(const float* src, float (&dst)[8]) {
  const float4 a = reinterpret_cast<const float4*>(src)[0];
  const float4 b = reinterpret_cast<const float4*>(src)[1];
  dst[0] = a.x, dst[1] = a.y, dst[2] = a.z, dst[3] = a.w;
  dst[4] = b.x, dst[5] = b.y, dst[6] = b.z, dst[7] = b.w;
}

// q[0..8) · k[0..8), q 16-byte aligned shared memory (every lane reads the same address: a
// broadcast).
__device__ __forceinline__ float DotEight(const float* q, const float (&k)[8]) {
  const float4 a = reinterpret_cast<const float4*>(q)[0];
  const float4 b = reinterpret_cast<const float4*>(q)[1];
  return a.x * k[0] + a.y * k[1] + a.z * k[2] + a.w * k[3] + b.x * k[4] + b.y * k[5] + b.z * k[6] +
         b.w * k[7];
}

// ---- cp.async: 16-byte global -> shared copies that do not pass through registers. ----

// `valid` false fills the 16 bytes with zeros and reads nothing (src-size 0), so rows past the
// end of a range hold zeros rather than stale or poisoned data.
__device__ __forceinline__ void CopyAsync16(void* shared_dst, const void* global_src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(shared_dst));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global_src),
               "r"(src_bytes));
}
__device__ __forceinline__ void CopyAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits for every copy this thread issued; a barrier must follow before other threads read them.
__device__ __forceinline__ void CopyAsyncWaitAll() {
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// ---- Pages. ----

// Element offset of token `key` of a sequence (its block table `blocks`) for one KV head.
template <int kHeadDim, typename T>
__device__ __forceinline__ int64_t TokenOffset(const KernelCommon<T>& c, const int32_t* blocks,
                                               int kv_head, int key) {
  const int block = key / c.block_size;
  const int slot = key - block * c.block_size;
  return int64_t(blocks[block]) * c.block_stride + int64_t(kv_head) * c.head_stride +
         int64_t(slot) * kHeadDim;
}

// ---- RoPE. ----

__device__ __forceinline__ DeviceRopeTableView SequenceRopeTable(const PositionArgs& p, int seq) {
  return p.seq_rope_tables != nullptr ? p.seq_rope_tables[seq] : p.rope_table;
}

// The table row of `position`, clamped into the table so that no read leaves it.
__device__ __forceinline__ const float* RopeRow(const DeviceRopeTableView& table, int64_t position,
                                                int row_floats) {
  const int64_t last = table.capacity > 0 ? table.capacity - 1 : 0;
  position = position < 0 ? 0 : (position > last ? last : position);
  return table.rows + position * row_floats;
}

// dst[0, head_dim) = src rotated by the position whose table row is `rope_row` (RoPE variants;
// the leading rotary_dim channels in the variant's layout, the rest copied), times `scale`. The
// lanes of a warp split the channels; dst is shared memory, src global or shared. Same
// arithmetic as kernels::ApplyRope.
template <typename T, PositionVariant kPos>
__device__ __forceinline__ void LoadRotatedScaled(const T* src, int head_dim, const float* rope_row,
                                                  const PositionArgs& p, float scale, float* dst,
                                                  int lane) {
  int first_plain = 0;
  if constexpr (IsRope(kPos)) {
    const int half = p.rotary_dim / 2;
    for (int k = lane; k < half; k += 32) {
      const int ia = kPos == PositionVariant::kRopeNeox ? k : 2 * k;
      const int ib = kPos == PositionVariant::kRopeNeox ? k + half : 2 * k + 1;
      const float a = ToFloat(src[ia]);
      const float b = ToFloat(src[ib]);
      const float cos_k = rope_row[k];
      const float sin_k = rope_row[p.rope_sin_offset + k];
      dst[ia] = (a * cos_k - b * sin_k) * scale;
      dst[ib] = (b * cos_k + a * sin_k) * scale;
    }
    first_plain = p.rotary_dim;
  }
  for (int c = first_plain + lane; c < head_dim; c += 32) dst[c] = ToFloat(src[c]) * scale;
}

// ---- Score biases, in base 2 like the scores. ----

template <PositionVariant kPos>
__device__ __forceinline__ float HeadSlope(const PositionArgs& p, int head) {
  if constexpr (kPos == PositionVariant::kAlibi) return p.alibi_slopes[head];
  return 0.0f;
}

// ALiBi's or T5's term for query head `head` (its ALiBi slope `slope`) at the given positions,
// as kernels::cpu::PagedAttention adds it; 0 for the other variants.
template <PositionVariant kPos>
__device__ __forceinline__ float ScoreBias(const PositionArgs& p, int num_heads, int head,
                                           float slope, int64_t query_position,
                                           int64_t key_position) {
  if constexpr (kPos == PositionVariant::kAlibi) {
    if (p.alibi_bf16_key_position_form) {
      // Falcon: bf16(slope * j) (round to nearest even, as RoundToBfloat16) times bias_scale.
      const float rounded =
          __bfloat162float(__float2bfloat16_rn(slope * static_cast<float>(key_position)));
      return rounded * p.alibi_bias_scale * kLog2e;
    }
    return slope * static_cast<float>(key_position - query_position) * kLog2e;
  } else if constexpr (kPos == PositionVariant::kRelativeBias) {
    int64_t distance = query_position - key_position;  // causal: never negative
    distance = distance < 0 ? 0 : distance;
    distance = distance > p.relative_bias_last_row ? p.relative_bias_last_row : distance;
    return p.relative_bias[distance * num_heads + head] * kLog2e;
  } else {
    return 0.0f;
  }
}

}  // namespace ropewire::kernels::cuda::attention
