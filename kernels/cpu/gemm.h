// Matrix products through oneDNN (see README, "Why oneDNN"): its matmul primitive, cached per
// shape, and for products with at most four rows of activations against a weight the
// bandwidth-bound skinny path of skinny_gemm.h.
#pragma once

#include <cstdint>

namespace ropewire::kernels::cpu {

// C[m, n] = A[m, k] · W[n, k]ᵀ, or C += that when `accumulate`. W is a weight in the
// [out_features, in_features] layout of torch.nn.Linear. Leading dimensions are row strides.
void MatMulTransposedB(const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                       int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate = false);

// C[m, n] = A[m, k] · B[k, n] (+ C when `accumulate`).
void MatMul(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
            int64_t m, int64_t n, int64_t k, bool accumulate = false);

}  // namespace ropewire::kernels::cpu
