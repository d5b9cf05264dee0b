#include "kernels/cpu/skinny_gemm.h"

#include <algorithm>

#include "kernels/cpu/x86_intrinsics.h"

namespace ropewire::kernels::cpu {
namespace {

// Rows are handed to threads in blocks of about this many weight bytes, in guided order: each
// thread first takes a long contiguous run (half the matrix when both arrive together), so the
// prefetchers see long unbroken streams, and the shrinking blocks at the end even out the finish
// times when one core is slowed by something else.
constexpr int64_t kBlockBytes = int64_t(32) << 10;
// Below this many weight bytes one thread does it all: forking costs more than it saves.
constexpr int64_t kParallelBytes = int64_t(128) << 10;

#ifdef ROPEWIRE_X86

// R consecutive W rows against M rows of A, 16 columns per step. Reading R rows side by side
// keeps R streams in flight per core: with 4 KiB pages each stream stalls on a page walk every
// 4 KiB (expensive under virtualisation), and R streams overlap those walks. Measured on a 2-vCPU
// AVX-512 KVM guest, 16 x 50 MB products, both cores (GB/s, 4 KiB / 2 MiB pages): one row at a
// time 22 / 26, with software prefetch 1 KiB ahead 22 / 28-29.5, four rows 26 / 28, eight rows
// 26-29 / 29 (12 or 16 rows: no better); prefetching on top of several rows gained nothing,
// and oneDNN's sgemm reads 23-25 / 27-31 on the same products. The M x R accumulators are
// independent FMA chains, enough to hide FMA latency when the rows come from cache.
template <int M, int R>
__attribute__((target("avx512f"))) void DotRows(const float* a, int64_t lda, const float* w,
                                                int64_t ldw, int64_t k, float* sums) {
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m512 av[M];
    for (int m = 0; m < M; ++m) av[m] = _mm512_loadu_ps(a + m * lda + i);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_loadu_ps(w + r * ldw + i);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm512_fmadd_ps(av[m], wv, acc[m][r]);
    }
  }
  if (i < k) {  // masked tail: k need not be a multiple of 16 (tiny test models)
    const __mmask16 mask = __mmask16((1u << (k - i)) - 1);
    __m512 av[M];
    for (int m = 0; m < M; ++m) av[m] = _mm512_maskz_loadu_ps(mask, a + m * lda + i);
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_maskz_loadu_ps(mask, w + r * ldw + i);
      for (int m = 0; m < M; ++m) acc[m][r] = _mm512_fmadd_ps(av[m], wv, acc[m][r]);
    }
  }
  for (int m = 0; m < M; ++m) {
    for (int r = 0; r < R; ++r) sums[m * R + r] = _mm512_reduce_add_ps(acc[m][r]);
  }
}

template <int M, int R>
__attribute__((target("avx512f"))) void StoreRows(const float* sums, int64_t rows, float* c,
                                                  int64_t ldc, int64_t n, bool accumulate) {
  for (int m = 0; m < M; ++m) {
    for (int64_t r = 0; r < rows; ++r) {
      float& out = c[m * ldc + n + r];
      out = accumulate ? out + sums[m * R + r] : sums[m * R + r];
    }
  }
}

// Rows [row_begin, row_end) of C: groups of R rows, then the leftover rows one at a time.
template <int M, int R>
__attribute__((target("avx512f"))) void RowRange(const float* a, int64_t lda, const float* w,
                                                 int64_t ldw, float* c, int64_t ldc,
                                                 int64_t row_begin, int64_t row_end, int64_t k,
                                                 bool accumulate) {
  float sums[M * R];
  int64_t n = row_begin;
  for (; n + R <= row_end; n += R) {
    DotRows<M, R>(a, lda, w + n * ldw, ldw, k, sums);
    StoreRows<M, R>(sums, R, c, ldc, n, accumulate);
  }
  for (; n < row_end; ++n) {
    DotRows<M, 1>(a, lda, w + n * ldw, ldw, k, sums);
    StoreRows<M, 1>(sums, 1, c, ldc, n, accumulate);
  }
}

using RowRangeFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                            int64_t, int64_t, bool);

// Eight rows side by side for one or two activation rows; four for three or four, so the M x R
// accumulators plus the loaded vectors fit the 32 vector registers.
constexpr int64_t RowsPerGroup(int64_t m) { return m <= 2 ? 8 : 6; }

RowRangeFn RowRangeFor(int64_t m) {
  switch (m) {
    case 1: return RowRange<1, RowsPerGroup(1)>;
    case 2: return RowRange<2, RowsPerGroup(2)>;
    case 3: return RowRange<3, RowsPerGroup(3)>;
    default: return RowRange<4, RowsPerGroup(4)>;
  }
}

#endif  // ROPEWIRE_X86

}  // namespace

bool SkinnyGemmAvailable() {
#ifdef ROPEWIRE_X86
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
#else
  return false;
#endif
}

void SkinnyMatMulTransposedB(const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                             int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
#ifdef ROPEWIRE_X86
  if (m <= 0 || n <= 0) return;
  const RowRangeFn run = RowRangeFor(m);
  const int64_t row_bytes = std::max<int64_t>(1, k * int64_t(sizeof(float)));
  const int64_t group = RowsPerGroup(m);
  const int64_t rows_per_block = group * std::max<int64_t>(1, kBlockBytes / (group * row_bytes));
  const int64_t blocks = (n + rows_per_block - 1) / rows_per_block;
  const bool parallel = blocks > 1 && n * row_bytes >= kParallelBytes;
#pragma omp parallel for schedule(guided) if (parallel)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t begin = block * rows_per_block;
    run(a, lda, w, ldw, c, ldc, begin, std::min(n, begin + rows_per_block), k, accumulate);
  }
#else
  (void)a, (void)lda, (void)w, (void)ldw, (void)c, (void)ldc, (void)m, (void)n, (void)k,
      (void)accumulate;
#endif
}

}  // namespace ropewire::kernels::cpu
