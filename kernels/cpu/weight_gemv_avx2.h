// The decode kernels of weight_gemm.h for x86 CPUs with AVX2, FMA and F16C: 16-bit weights
// widened in registers; block formats as integer dot products (vpmaddubsw / vpmaddwd) of each
// 32-weight block with the activations' 8-bit block, scaled once per block.
#pragma once

#include <cstdint>

#include "kernels/cpu/activation_blocks.h"
#include "kernels/weight_format.h"

namespace ropewire::kernels::cpu {

bool WeightGemvAvx2Available();

// Rows [row_begin, row_end) of C[m, w.rows] = A[m, k] · Wᵀ (+ C when `accumulate`), m <= 4.
// `blocks` holds A's rows quantized (k / 32 blocks per row) when w.format is a block format.
void GemvRowsAvx2(const float* a, int64_t lda, const ActivationBlock* blocks, const WeightView& w,
                  float* c, int64_t ldc, int64_t m, int64_t row_begin, int64_t row_end,
                  bool accumulate);

}  // namespace ropewire::kernels::cpu
