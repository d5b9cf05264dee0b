#include "kernels/cpu/gemm.h"

#include <dnnl.h>

#include <cstdlib>

namespace ropewire::kernels::cpu {
namespace {

void Sgemm(char transb, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m == 0 || n == 0) return;
  dnnl_status_t st = dnnl_sgemm('N', transb, m, n, k, 1.0f, a, lda, b, ldb,
                                accumulate ? 1.0f : 0.0f, c, ldc);
  // Arguments are produced by ropewire itself; a failure here is a programming error.
  if (st != dnnl_success) std::abort();
}

}  // namespace

void MatMulTransposedB(const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                       int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
  Sgemm('T', a, lda, w, ldw, c, ldc, m, n, k, accumulate);
}

void MatMul(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
            int64_t m, int64_t n, int64_t k, bool accumulate) {
  Sgemm('N', a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

}  // namespace ropewire::kernels::cpu
