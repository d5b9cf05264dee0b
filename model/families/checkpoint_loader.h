// Reading a model directory into a ModelCheckpoint: config.json through its family's parser,
// the safetensors tensors through its family's layout (model/families/layout.h), into the
// backend-neutral decoder weights.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/decoder_weights.h"
#include "model/families/layout.h"
#include "model/safetensors.h"

namespace ropewire::model {

absl::StatusOr<ModelCheckpoint> LoadCheckpoint(const std::string& dir);

// The decoder weights `config` describes, read from `store` as `layout` names them. Errors name
// the file and the tensor (missing, mis-shaped, an unsupported dtype).
absl::StatusOr<DecoderWeights> LoadDecoderWeights(const ModelConfig& config,
                                                  const CheckpointLayout& layout,
                                                  const TensorStore& store);

// Reorders the rows of a fused qkv weight (and its bias when non-empty) into [q; k; v].
void DeinterleaveQkv(FusedQkvLayout layout, int num_heads, int num_kv_heads, int head_dim,
                     Matrix* weight, std::vector<float>* bias);

}  // namespace ropewire::model
