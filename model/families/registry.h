// Which family parses each Hugging Face model_type's config.json and names its tensors.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"
#include "model/families/layout.h"
#include "model/json_reader.h"

namespace ropewire::model {

struct ModelFamily {
  std::string model_type;
  // Fills the family's fields of ModelConfig (dimensions, norms, positional encoding, ...).
  absl::Status (*parse)(const JsonReader& json, ModelConfig* config);
  // How its checkpoints name and lay out the decoder's tensors, for a parsed config.
  CheckpointLayout (*layout)(const ModelConfig& config);
};

// Every supported family, sorted by model_type.
const std::vector<ModelFamily>& ModelFamilies();
// The family of `model_type`, or null.
const ModelFamily* FindModelFamily(const std::string& model_type);

}  // namespace ropewire::model
