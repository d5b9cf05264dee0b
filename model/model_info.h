// A JSON description of a resolved model configuration, for --info and the model-info call.
#pragma once

#include "model/config.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {

nlohmann::json ModelInfoJson(const ModelConfig& config);

}  // namespace ropewire::model
