// Matrix products with very few rows of activations (decode: one row per sequence). They read
// every weight once and do two FLOPs per weight, so their speed is the memory system's: this
// path reads several weight rows side by side and gives each thread long contiguous runs of
// rows (see skinny_gemm.cc for the measurements behind the choices).
#pragma once

#include <cstdint>

namespace ropewire::kernels::cpu {

// Largest row count of A the skinny path handles; larger products go to the BLAS.
inline constexpr int64_t kSkinnyMaxRows = 4;

// Whether this machine runs the skinny path (it needs AVX-512F).
bool SkinnyGemmAvailable();

// C[m, n] = A[m, k] · W[n, k]ᵀ (+ C when `accumulate`), for 1 <= m <= kSkinnyMaxRows, on a
// machine where SkinnyGemmAvailable(). Same contract as MatMulTransposedB.
void SkinnyMatMulTransposedB(const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                             int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate);

}  // namespace ropewire::kernels::cpu
