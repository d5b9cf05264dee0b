// Reading a model directory into a ModelCheckpoint: config.json through its family's parser,
// the safetensors tensors through its family's layout (model/families/layout.h), into the
// backend-neutral decoder weights.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/decoder_weights.h"
#include "model/families/layout.h"
#include "model/safetensors.h"
#include "model/weight_formats.h"

namespace ropewire::model {

// `options` choose the matrices' storage formats (model/weight_formats.h). A path naming a file
// rather than a directory is a GGUF model (model/gguf/gguf_weights.h).
absl::StatusOr<ModelCheckpoint> LoadCheckpoint(const std::string& dir,
                                               const WeightFormatOptions& options = {});

// The decoder weights `config` describes, read from `store` as `layout` names them. Errors name
// the file and the tensor (missing, mis-shaped, an unsupported dtype).
absl::StatusOr<DecoderWeights> LoadDecoderWeights(const ModelConfig& config,
                                                  const CheckpointLayout& layout,
                                                  const TensorStore& store,
                                                  const WeightFormatPolicy& formats);

// Reorders the rows of a fused qkv weight (and its bias when non-empty) into [q; k; v].
void DeinterleaveQkv(FusedQkvLayout layout, int num_heads, int num_kv_heads, int head_dim,
                     Weight* weight, std::vector<float>* bias);

}  // namespace ropewire::model
