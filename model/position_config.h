// Resolves a model's positional encoding from config.json into the kernels' descriptor
// (normalisation of transformers 4.x `rope_theta`/`rope_scaling` and 5.x `rope_parameters`).
#pragma once

#include "absl/status/statusor.h"
#include "kernels/position_encoding.h"
#include "model/config.h"
#include "model/json_reader.h"

namespace ropewire::model {

// Fills config->position from the config JSON. Needs head_dim and max_position_embeddings
// already set. A scheme or parameter that cannot be honoured is an error, never a default.
absl::Status ResolvePositionEncoding(const JsonReader& json, ModelConfig* config);

// inv_freq[k] = 1 / theta^(2k / rotary_dim), in fp32 as transformers computes it.
std::vector<float> DefaultInverseFrequencies(double theta, int rotary_dim);

}  // namespace ropewire::model
