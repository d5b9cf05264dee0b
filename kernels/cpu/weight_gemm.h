// Products of activations with a weight stored in any format (kernels/weight_format.h).
//
// Decode-shaped products (at most kWeightGemvMaxRows rows of activations) read every weight once
// and are bound by memory: they run on the stored format directly, 16-bit weights widened in
// registers, block formats against activations quantized to 8-bit blocks on the fly (integer dot
// products per block, scaled once per block). Larger products (prefill) are bound by arithmetic:
// tiles of the weight are widened to f32 in cache and multiplied by the f32 GEMM, so every
// format prefills about as fast as f32 weights do.
#pragma once

#include <cstdint>

#include "kernels/weight_format.h"

namespace ropewire::kernels::cpu {

inline constexpr int64_t kWeightGemvMaxRows = 4;

// C[m, n] = A[m, k] · Wᵀ (+ C when `accumulate`) for W = [n, k] = [w.rows, w.cols], in the
// [out_features, in_features] layout of torch.nn.Linear. Block formats need k % 32 == 0.
void MatMulWeight(const float* a, int64_t lda, const WeightView& w, float* c, int64_t ldc,
                  int64_t m, bool accumulate = false);

// Which decode kernels run: the SIMD ones where the CPU has them (AVX2 with FMA and F16C), or
// the portable ones, for tests that compare both on one machine.
enum class WeightKernels { kBest, kPortable };
void SetWeightKernelsForTesting(WeightKernels kernels);
// Whether the SIMD decode kernels run on this machine.
bool WeightSimdKernelsAvailable();

}  // namespace ropewire::kernels::cpu
