// Activations quantized to 8-bit blocks on the fly, for dot products with the block formats of
// kernels/weight_format.h (the CPU decode kernels of weight_gemm.h).
#pragma once

#include <cstdint>

#include "kernels/weight_format.h"

namespace ropewire::kernels::cpu {

// 32 activations as int8 with their scale: x ≈ d * q. `sum` is Σ d * q (the block's sum as the
// quantized values have it), which Q4_1's minimum multiplies.
struct ActivationBlock {
  float d;
  float sum;
  int8_t qs[kQuantBlock];
};

// Quantizes `n` activations (a multiple of kQuantBlock) into n / kQuantBlock blocks.
void QuantizeActivations(const float* x, int64_t n, ActivationBlock* blocks);

}  // namespace ropewire::kernels::cpu
