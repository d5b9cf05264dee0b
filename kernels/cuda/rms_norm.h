// RMSNorm on the GPU: fp32 accumulation, storage type T (float, half or bfloat16).
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace ropewire::kernels::cuda {

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight for `rows` rows of `cols` floats, all
// pointers on the device.
absl::Status RmsNormF32(const float* x, const float* weight, float eps, float* out, int64_t rows,
                        int64_t cols, void* stream);

}  // namespace ropewire::kernels::cuda
