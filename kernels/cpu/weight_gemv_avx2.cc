#include "kernels/cpu/weight_gemv_avx2.h"

#include "kernels/cpu/x86_intrinsics.h"
#include "kernels/float16.h"

namespace ropewire::kernels::cpu {

#ifdef ROPEWIRE_X86
namespace {

#define ROPEWIRE_AVX2 __attribute__((target("avx2,fma,f16c")))

ROPEWIRE_AVX2 inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

ROPEWIRE_AVX2 inline float HalfBitsToFloat(uint16_t h) { return _cvtsh_ss(h); }

// Eight 16-bit weights widened to f32.
template <WeightFormat F>
ROPEWIRE_AVX2 inline __m256 Widen8(const uint16_t* p) {
  const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (F == WeightFormat::kF16) {
    return _mm256_cvtph_ps(bits);
  } else {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
}

template <WeightFormat F>
inline float WidenOne(uint16_t bits) {
  return F == WeightFormat::kF16 ? HalfToFloat(bits) : Bf16ToFloat(bits);
}

// sums[m * R + r] = A row m · W row r over k columns, for R 16-bit rows `row_bytes` apart.
template <WeightFormat F, int M, int R>
ROPEWIRE_AVX2 void DotRows16(const float* a, int64_t lda, const uint8_t* w, int64_t row_bytes,
                             int64_t k, float* sums) {
  __m256 acc[M][R];
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    __m256 av[M];
    for (int m = 0; m < M; ++m) av[m] = _mm256_loadu_ps(a + m * lda + i);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = Widen8<F>(reinterpret_cast<const uint16_t*>(w + r * row_bytes) + i);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm256_fmadd_ps(av[m], wv, acc[m][r]);
    }
  }
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) {
      float sum = HorizontalSum(acc[m][r]);
      const uint16_t* row = reinterpret_cast<const uint16_t*>(w + r * row_bytes);
      for (int64_t j = i; j < k; ++j) sum += a[m * lda + j] * WidenOne<F>(row[j]);
      sums[m * R + r] = sum;
    }
  }
}

// The 32 weights of block `b` of a row as int8 (signed for Q8_0 and Q4_0, the unsigned nibbles
// for Q4_1), with the block's scale and (Q4_1) minimum.
template <WeightFormat F>
ROPEWIRE_AVX2 inline __m256i LoadBlock(const uint8_t* row, int64_t b, float* d, float* min) {
  if constexpr (F == WeightFormat::kQ8_0) {
    const auto* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
    *d = HalfBitsToFloat(block->d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block->qs));
  } else {
    const uint8_t* qs;
    if constexpr (F == WeightFormat::kQ4_0) {
      const auto* block = reinterpret_cast<const BlockQ4_0*>(row) + b;
      *d = HalfBitsToFloat(block->d);
      qs = block->qs;
    } else {
      const auto* block = reinterpret_cast<const BlockQ4_1*>(row) + b;
      *d = HalfBitsToFloat(block->d);
      *min = HalfBitsToFloat(block->m);
      qs = block->qs;
    }
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    const __m128i lo = _mm_and_si128(packed, low_mask);                     // elements 0..15
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), low_mask);  // elements 16..31
    const __m256i nibbles = _mm256_set_m128i(hi, lo);
    if constexpr (F == WeightFormat::kQ4_0) return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
    return nibbles;
  }
}

// Σ w_j * a_j over 32 int8 pairs, as eight int32 partial sums. Signed weights go through
// vpmaddubsw as |w| times a with w's sign; Q4_1's nibbles are unsigned already. No pair sum can
// saturate: quantized values stay within [-127, 127] (nibbles within [0, 15]).
template <WeightFormat F>
ROPEWIRE_AVX2 inline __m256i BlockDot(__m256i w, __m256i a) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (F == WeightFormat::kQ4_1) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones);
  } else {
    const __m256i abs_w = _mm256_sign_epi8(w, w);
    const __m256i signed_a = _mm256_sign_epi8(a, w);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, signed_a), ones);
  }
}

template <WeightFormat F, int M, int R>
ROPEWIRE_AVX2 void DotRowsBlocks(const ActivationBlock* act, int64_t blocks_per_row,
                                 const uint8_t* w, int64_t row_bytes, float* sums) {
  __m256 acc[M][R];
  float minimum_terms[M][R] = {};
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) acc[m][r] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < blocks_per_row; ++b) {
    __m256i aq[M];
    for (int m = 0; m < M; ++m) {
      aq[m] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[m * blocks_per_row + b].qs));
    }
    for (int r = 0; r < R; ++r) {
      float d = 0.0f, minimum = 0.0f;
      const __m256i wq = LoadBlock<F>(w + r * row_bytes, b, &d, &minimum);
      for (int m = 0; m < M; ++m) {
        const ActivationBlock& ab = act[m * blocks_per_row + b];
        const __m256 dot = _mm256_cvtepi32_ps(BlockDot<F>(wq, aq[m]));
        acc[m][r] = _mm256_fmadd_ps(dot, _mm256_set1_ps(d * ab.d), acc[m][r]);
        if constexpr (F == WeightFormat::kQ4_1) minimum_terms[m][r] += minimum * ab.sum;
      }
    }
  }
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) sums[m * R + r] = HorizontalSum(acc[m][r]) + minimum_terms[m][r];
  }
}

struct RowsArgs {
  const float* a;
  int64_t lda;
  const ActivationBlock* blocks;
  const WeightView* w;
  float* c;
  int64_t ldc;
  bool accumulate;
};

template <WeightFormat F, int M, int R>
ROPEWIRE_AVX2 void DotGroup(const RowsArgs& x, int64_t n, float* sums) {
  const uint8_t* rows = x.w->Row(n);
  if constexpr (IsQuantized(F)) {
    DotRowsBlocks<F, M, R>(x.blocks, x.w->cols / kQuantBlock, rows, x.w->row_bytes(), sums);
  } else {
    DotRows16<F, M, R>(x.a, x.lda, rows, x.w->row_bytes(), x.w->cols, sums);
  }
}

template <int M, int R>
inline void Store(const RowsArgs& x, const float* sums, int64_t n) {
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) {
      float& out = x.c[m * x.ldc + n + r];
      out = x.accumulate ? out + sums[m * R + r] : sums[m * R + r];
    }
  }
}

// R rows side by side keep R weight streams in flight (see skinny_gemm.cc); the M x R
// accumulators and the loaded activations fit the sixteen vector registers.
constexpr int RowsPerGroup(int m) { return m <= 2 ? 4 : 2; }

template <WeightFormat F, int M>
ROPEWIRE_AVX2 void RowRange(const RowsArgs& x, int64_t row_begin, int64_t row_end) {
  constexpr int R = RowsPerGroup(M);
  float sums[M * R];
  int64_t n = row_begin;
  for (; n + R <= row_end; n += R) {
    DotGroup<F, M, R>(x, n, sums);
    Store<M, R>(x, sums, n);
  }
  for (; n < row_end; ++n) {
    DotGroup<F, M, 1>(x, n, sums);
    Store<M, 1>(x, sums, n);
  }
}

template <WeightFormat F>
void RowRangeFor(const RowsArgs& x, int64_t m, int64_t row_begin, int64_t row_end) {
  switch (m) {
    case 1: return RowRange<F, 1>(x, row_begin, row_end);
    case 2: return RowRange<F, 2>(x, row_begin, row_end);
    case 3: return RowRange<F, 3>(x, row_begin, row_end);
    default: return RowRange<F, 4>(x, row_begin, row_end);
  }
}

}  // namespace

bool WeightGemvAvx2Available() {
  static const bool available =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
  return available;
}

void GemvRowsAvx2(const float* a, int64_t lda, const ActivationBlock* blocks, const WeightView& w,
                  float* c, int64_t ldc, int64_t m, int64_t row_begin, int64_t row_end,
                  bool accumulate) {
  const RowsArgs x{a, lda, blocks, &w, c, ldc, accumulate};
  switch (w.format) {
    case WeightFormat::kBF16: return RowRangeFor<WeightFormat::kBF16>(x, m, row_begin, row_end);
    case WeightFormat::kF16: return RowRangeFor<WeightFormat::kF16>(x, m, row_begin, row_end);
    case WeightFormat::kQ8_0: return RowRangeFor<WeightFormat::kQ8_0>(x, m, row_begin, row_end);
    case WeightFormat::kQ4_0: return RowRangeFor<WeightFormat::kQ4_0>(x, m, row_begin, row_end);
    case WeightFormat::kQ4_1: return RowRangeFor<WeightFormat::kQ4_1>(x, m, row_begin, row_end);
    case WeightFormat::kF32: break;  // MatMulWeight sends f32 to the f32 GEMM
  }
}

#else  // no x86 intrinsics: the portable kernels serve every machine

bool WeightGemvAvx2Available() { return false; }

void GemvRowsAvx2(const float*, int64_t, const ActivationBlock*, const WeightView&, float*, int64_t,
                  int64_t, int64_t, int64_t, bool) {}

#endif

}  // namespace ropewire::kernels::cpu
