#include "kernels/cpu/attention_block.h"

#include <cmath>
#include <cstdlib>

#include "kernels/cpu/x86_intrinsics.h"

namespace ropewire::kernels::cpu {

#ifdef ROPEWIRE_X86
namespace {

#define ROPEWIRE_AVX512 __attribute__((target("avx512f")))

// In-register transpose of a 16 x 16 tile: rows[i] lane j becomes rows[j] lane i.
ROPEWIRE_AVX512 inline void Transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Within each 128-bit lane k, r[4i + j] then holds column 4k + j of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Gather the four row groups of each column with 128-bit lane shuffles.
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
  }
}

// keys [num_keys][head_dim] → transposed [head_dim][16], missing keys as zeros, so one vector
// load gives one channel of all 16 keys.
ROPEWIRE_AVX512 void TransposeKeys(const float* keys, int num_keys, int head_dim,
                                   float* transposed) {
  for (int chunk = 0; chunk < head_dim; chunk += 16) {
    __m512 rows[16];
    for (int t = 0; t < 16; ++t) {
      rows[t] = t < num_keys ? _mm512_loadu_ps(keys + int64_t(t) * head_dim + chunk)
                             : _mm512_setzero_ps();
    }
    Transpose16x16(rows);
    for (int c = 0; c < 16; ++c) _mm512_store_ps(transposed + (chunk + c) * 16, rows[c]);
  }
}

// R query rows against the transposed keys: R independent FMA chains, each FMA doing one
// channel of 16 keys with the row's channel value broadcast.
template <int R>
ROPEWIRE_AVX512 void ScoreRows(const float* queries, int head_dim, const float* transposed,
                               __mmask16 key_mask, float* scores, int score_stride) {
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int c = 0; c < head_dim; ++c) {
    const __m512 k = _mm512_load_ps(transposed + c * 16);
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(queries[int64_t(r) * head_dim + c]), k, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r)
    _mm512_mask_storeu_ps(scores + int64_t(r) * score_stride, key_mask, acc[r]);
}

using ScoreRowsFn = void (*)(const float*, int, const float*, __mmask16, float*, int);
constexpr ScoreRowsFn kScoreRows[9] = {nullptr,      ScoreRows<1>, ScoreRows<2>,
                                       ScoreRows<3>, ScoreRows<4>, ScoreRows<5>,
                                       ScoreRows<6>, ScoreRows<7>, ScoreRows<8>};

// exp(x) for x <= 0 (scores minus their running maximum), Cephes' single-precision
// polynomial on [-ln2/2, ln2/2] after range reduction: within 2 ulp of std::exp.
ROPEWIRE_AVX512 inline __m512 Exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));  // exp underflows below; masked lanes land here
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// acc[D vectors] = acc * rescale + Σ_t weights[t] · values[t], the accumulator held in registers
// across the block's keys.
template <int D>
ROPEWIRE_AVX512 void RescaleAccumulate(float* acc, float rescale, const float* weights, int t_begin,
                                       int t_end, const float* values) {
  __m512 a[D];
  const __m512 scale = _mm512_set1_ps(rescale);
  for (int k = 0; k < D; ++k) a[k] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * k), scale);
  for (int t = t_begin; t < t_end; ++t) {
    const __m512 w = _mm512_set1_ps(weights[t]);
    const float* v = values + int64_t(t) * (16 * D);
    for (int k = 0; k < D; ++k) a[k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 16 * k), a[k]);
  }
  for (int k = 0; k < D; ++k) _mm512_storeu_ps(acc + 16 * k, a[k]);
}

using RescaleAccumulateFn = void (*)(float*, float, const float*, int, int, const float*);
constexpr RescaleAccumulateFn kRescaleAccumulate[17] = {nullptr,
                                                        RescaleAccumulate<1>,
                                                        RescaleAccumulate<2>,
                                                        RescaleAccumulate<3>,
                                                        RescaleAccumulate<4>,
                                                        RescaleAccumulate<5>,
                                                        RescaleAccumulate<6>,
                                                        RescaleAccumulate<7>,
                                                        RescaleAccumulate<8>,
                                                        RescaleAccumulate<9>,
                                                        RescaleAccumulate<10>,
                                                        RescaleAccumulate<11>,
                                                        RescaleAccumulate<12>,
                                                        RescaleAccumulate<13>,
                                                        RescaleAccumulate<14>,
                                                        RescaleAccumulate<15>,
                                                        RescaleAccumulate<16>};

__mmask16 KeyRangeMask(int t_begin, int t_end) {
  const unsigned below_end = t_end >= 16 ? 0xffffu : (1u << t_end) - 1;
  const unsigned below_begin = (1u << t_begin) - 1;
  return __mmask16(below_end & ~below_begin);
}

}  // namespace

bool AttentionBlockAvailable(int head_dim) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && head_dim > 0 && head_dim % 16 == 0 && head_dim <= kAttentionBlockMaxHeadDim;
}

ROPEWIRE_AVX512 void BlockScores(const float* queries, int rows, int head_dim, const float* keys,
                                 int num_keys, float* scores, int score_stride) {
  alignas(64) float transposed[kAttentionBlockMaxHeadDim * kAttentionBlockKeys];
  TransposeKeys(keys, num_keys, head_dim, transposed);
  const __mmask16 key_mask = KeyRangeMask(0, num_keys);
  for (int r = 0; r < rows; r += 8) {
    const int n = rows - r < 8 ? rows - r : 8;
    kScoreRows[n](queries + int64_t(r) * head_dim, head_dim, transposed, key_mask,
                  scores + int64_t(r) * score_stride, score_stride);
  }
}

ROPEWIRE_AVX512 void SoftmaxAccumulateRow(float* p, int t_begin, int t_end, const float* values,
                                          int head_dim, float* row_max, float* row_sum,
                                          float* acc) {
  const __mmask16 mask = KeyRangeMask(t_begin, t_end);
  const __m512 scores = _mm512_maskz_loadu_ps(mask, p);
  const float new_max = std::fmax(*row_max, _mm512_mask_reduce_max_ps(mask, scores));
  const float rescale = std::exp(*row_max - new_max);  // 0 for the row's first block (-inf)
  const __m512 weights =
      _mm512_maskz_mov_ps(mask, Exp(_mm512_sub_ps(scores, _mm512_set1_ps(new_max))));
  _mm512_mask_storeu_ps(p, mask, weights);
  *row_sum = *row_sum * rescale + _mm512_reduce_add_ps(weights);
  *row_max = new_max;
  kRescaleAccumulate[head_dim / 16](acc, rescale, p, t_begin, t_end, values);
}

#else  // not x86-64 GCC: the caller keeps its scalar path

bool AttentionBlockAvailable(int) { return false; }
void BlockScores(const float*, int, int, const float*, int, float*, int) { std::abort(); }
void SoftmaxAccumulateRow(float*, int, int, const float*, int, float*, float*, float*) {
  std::abort();
}

#endif

}  // namespace ropewire::kernels::cpu
