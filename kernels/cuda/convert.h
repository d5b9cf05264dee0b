// Conversions between f32 and the 16-bit storage types of the CUDA forward pass: weights are
// loaded as f32 on the host and stored as bf16 or fp16 on the device; f32 results (logits) are
// produced from 16-bit data where a caller needs them. All pointers are device pointers unless
// the name says host.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace ropewire::kernels::cuda {

// out[i] = in[i] rounded to nearest even, for i < count. T: __nv_bfloat16 or __half.
template <typename T>
absl::Status ConvertFromF32(const float* in, T* out, int64_t count, cudaStream_t stream);

// out[i] = float(in[i]) (exact), for i < count.
template <typename T>
absl::Status ConvertToF32(const T* in, float* out, int64_t count, cudaStream_t stream);

// A new device buffer holding `count` host floats as T. Converts on the device through an f32
// staging buffer of at most 64 MiB, so uploading a large matrix never needs its f32 copy on the
// device; returns once the data is on the device (synchronises `stream`).
template <typename T>
absl::StatusOr<DeviceBuffer> UploadAs(const float* host, int64_t count, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
