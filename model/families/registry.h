// Which family file parses and loads each Hugging Face model_type.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/causal_lm.h"
#include "model/json_reader.h"
#include "model/safetensors.h"

namespace ropewire::model {

struct ModelFamily {
  std::string model_type;
  // Fills the family's fields of ModelConfig (dimensions, norms, positional encoding, ...).
  absl::Status (*parse)(const JsonReader& json, ModelConfig* config);
  // Loads the family's tensors and builds the model.
  absl::StatusOr<std::unique_ptr<CausalLm>> (*load)(const ModelConfig& config,
                                                    const TensorStore& store);
};

// Every supported family, sorted by model_type.
const std::vector<ModelFamily>& ModelFamilies();
// The family of `model_type`, or null.
const ModelFamily* FindModelFamily(const std::string& model_type);

}  // namespace ropewire::model
