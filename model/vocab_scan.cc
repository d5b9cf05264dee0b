#include "model/vocab_scan.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "kernels/cpu/simd.h"

// The helpers below pass 32-byte vectors by value; they are always inlined into the per-ISA
// clones, so no call ever crosses the ABI that GCC warns about.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace ropewire::model {
namespace {

#define ROPEWIRE_LANES_INLINE inline __attribute__((always_inline))

// Eight lanes in GCC's vector extensions: AVX registers in the x86-64-v3/v4 clones, two SSE
// registers in the baseline one, and plain code elsewhere. (Sixteen-lane vectors, split in two
// by the AVX2 clone, ran at a fifth of the speed there.)
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));
constexpr int kLanes = 8;

ROPEWIRE_LANES_INLINE F8 Load(const float* p) {
  F8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

ROPEWIRE_LANES_INLINE F8 Splat(float a) { return F8{} + a; }

// Lanes rotated by `shift`, for tree reductions (three steps, not a chain of seven).
template <int shift>
ROPEWIRE_LANES_INLINE F8 Rotate(F8 v) {
#if defined(__clang__)
  return __builtin_shufflevector(v, v, shift % 8, (shift + 1) % 8, (shift + 2) % 8, (shift + 3) % 8,
                                 (shift + 4) % 8, (shift + 5) % 8, (shift + 6) % 8,
                                 (shift + 7) % 8);
#else
  return __builtin_shuffle(v, (I8{0, 1, 2, 3, 4, 5, 6, 7} + shift) & 7);
#endif
}

ROPEWIRE_LANES_INLINE F8 Max(F8 a, F8 b) { return a > b ? a : b; }

ROPEWIRE_LANES_INLINE float LaneMax(F8 v) {
  v = Max(v, Rotate<4>(v));
  v = Max(v, Rotate<2>(v));
  return Max(v, Rotate<1>(v))[0];
}

ROPEWIRE_LANES_INLINE float LaneSum(F8 v) {
  v += Rotate<4>(v);
  v += Rotate<2>(v);
  return (v + Rotate<1>(v))[0];
}

// exp(y) for y <= 0: 2^k · e^r with k = round(y / ln 2) and r = y - k·ln 2 (|r| <= ln 2 / 2,
// ln 2 split in two parts so that k·ln2_hi is exact), e^r by its Taylor polynomial of degree 6
// (relative error < 1.3e-7 before rounding to float). Adding 1.5 · 2^23 rounds to an integer held
// in the low mantissa bits, which gives k both as a float and as an integer.
ROPEWIRE_LANES_INLINE F8 ExpNonPositive(F8 y) {
  const F8 lowest = Splat(-87.0f);
  y = y < lowest ? lowest : y;
  const F8 rounded = y * 1.44269504088896341f + 12582912.0f;
  const F8 k = rounded - 12582912.0f;
  const I8 k_int = std::bit_cast<I8>(rounded) - 0x4B400000;
  const F8 r = (y - k * 0.693145751953125f) - k * 1.428606765330187e-6f;
  F8 p = Splat(1.0f / 720);
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<F8>((k_int + 127) << 23);
}

// The same for one value (row tails), through the vector code so that both agree exactly.
ROPEWIRE_LANES_INLINE float ExpNonPositive(float y) { return ExpNonPositive(Splat(y))[0]; }

}  // namespace

ROPEWIRE_SIMD_CLONES
float ScanRow(const float* x, int64_t n, float inv_temperature, float* chunk_max,
              float* chunk_sum) {
  constexpr int kVectors = kScanChunk / kLanes;
  float best = -std::numeric_limits<float>::infinity();
  int64_t c = 0;
  for (; (c + 1) * kScanChunk <= n; ++c) {
    F8 v[kVectors];
    for (int j = 0; j < kVectors; ++j) v[j] = Load(x + c * kScanChunk + j * kLanes);
    F8 m = v[0];
    for (int j = 1; j < kVectors; ++j) m = v[j] > m ? v[j] : m;
    const float top = LaneMax(m);
    F8 sum = Splat(0.0f);
    for (int j = 0; j < kVectors; ++j) sum += ExpNonPositive((v[j] - top) * inv_temperature);
    chunk_max[c] = top;
    chunk_sum[c] = LaneSum(sum);
    best = std::max(best, top);
  }
  if (c * kScanChunk < n) {  // a partial last chunk
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t i = c * kScanChunk; i < n; ++i) top = std::max(top, x[i]);
    float sum = 0.0f;
    for (int64_t i = c * kScanChunk; i < n; ++i)
      sum += ExpNonPositive((x[i] - top) * inv_temperature);
    chunk_max[c] = top;
    chunk_sum[c] = sum;
    best = std::max(best, top);
  }
  return best;
}

ROPEWIRE_SIMD_CLONES
double ChunkMasses(const float* chunk_max, const float* chunk_sum, int64_t chunks, float max,
                   float inv_temperature, double* mass) {
  double total = 0;
  int64_t c = 0;
  for (; c + kLanes <= chunks; c += kLanes) {
    const F8 scale = ExpNonPositive((Load(chunk_max + c) - max) * inv_temperature);
    const F8 m = scale * Load(chunk_sum + c);
    for (int j = 0; j < kLanes; ++j) total += mass[c + j] = m[j];
  }
  for (; c < chunks; ++c)
    total += mass[c] = ExpNonPositive((chunk_max[c] - max) * inv_temperature) * chunk_sum[c];
  return total;
}

ROPEWIRE_SIMD_CLONES
void ExpRange(const float* x, int64_t begin, int64_t end, float max, float inv_temperature,
              float* e) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const F8 v = ExpNonPositive((Load(x + i) - max) * inv_temperature);
    std::memcpy(e + (i - begin), &v, sizeof v);
  }
  for (; i < end; ++i) e[i - begin] = ExpNonPositive((x[i] - max) * inv_temperature);
}

ROPEWIRE_SIMD_CLONES
double SumExp(const float* x, int64_t n, float max, float inv_temperature, float floor) {
  double total = 0;
  const F8 zero = Splat(0.0f);
  int64_t i = 0;
  for (; i + kScanChunk <= n; i += kScanChunk) {
    F8 sum = zero;
    for (int64_t j = i; j < i + kScanChunk; j += kLanes) {
      const F8 v = Load(x + j);
      const F8 e = ExpNonPositive((v - max) * inv_temperature);
      sum += v >= floor ? e : zero;
    }
    total += static_cast<double>(LaneSum(sum));
  }
  for (; i < n; ++i) {
    if (x[i] >= floor) total += ExpNonPositive((x[i] - max) * inv_temperature);
  }
  return total;
}

void GatherAtLeast(const float* x, int64_t n, const float* chunk_max, float threshold,
                   std::vector<int32_t>* ids) {
  ids->clear();
  const int64_t chunks = ScanChunks(n);
  for (int64_t c = 0; c < chunks; ++c) {
    if (!(chunk_max[c] >= threshold)) continue;
    const int64_t end = std::min(n, (c + 1) * kScanChunk);
    for (int64_t i = c * kScanChunk; i < end; ++i) {
      if (x[i] >= threshold) ids->push_back(static_cast<int32_t>(i));
    }
  }
}

ROPEWIRE_SIMD_CLONES
int64_t ArgMaxOf(const float* x, int64_t n) {
  // Per lane the largest value and the first index holding it; then the best lane, ties to the
  // smaller index.
  F8 best = Splat(-std::numeric_limits<float>::infinity());
  I8 best_index = I8{} - 1;
  I8 index = I8{0, 1, 2, 3, 4, 5, 6, 7};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes, index += kLanes) {
    const F8 v = Load(x + i);
    const I8 greater = v > best;
    best = greater ? v : best;
    best_index = greater ? index : best_index;
  }
  float top = -std::numeric_limits<float>::infinity();
  int64_t top_index = -1;
  for (int j = 0; j < kLanes; ++j) {
    if (best_index[j] < 0) continue;
    if (best[j] > top || (best[j] == top && best_index[j] < top_index)) {
      top = best[j];
      top_index = best_index[j];
    }
  }
  for (; i < n; ++i) {
    if (x[i] > top) top = x[i], top_index = i;
  }
  return top_index < 0 ? 0 : top_index;  // only NaNs: token 0
}

}  // namespace ropewire::model
