// Writes safetensors files (f32, f16 or bf16 payloads). Used to produce model directories
// programmatically: random Llama-shaped checkpoints for benchmarks, malformed ones for tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/safetensors.h"

namespace ropewire::model {

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::kF32;  // stored dtype: kF32, kF16 or kBF16
  std::vector<float> values;  // converted on write when dtype is 16-bit
};

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace ropewire::model
