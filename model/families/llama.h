#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "model/causal_lm.h"
#include "model/safetensors.h"

namespace ropewire::model {

// llama, mistral, qwen2.
absl::StatusOr<std::unique_ptr<CausalLm>> LoadLlamaFamily(const ModelConfig& config,
                                                          const TensorStore& store);

}  // namespace ropewire::model
