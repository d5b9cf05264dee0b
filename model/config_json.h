// config.json → ModelConfig: each family's parser (model/families) over one JSON reader, with
// errors that name the file and the offending key.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"

namespace ropewire::model {

// Reads and validates `dir`/config.json. Errors name the file and the offending key.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& dir);

// Same, from JSON text; `source` names it in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source);

// The model types this build can run.
std::vector<std::string> SupportedModelTypes();

class JsonReader;
// config.json's activation name under `key` (`fallback` when absent).
absl::StatusOr<Activation> ParseActivation(const JsonReader& json, const std::string& key,
                                           const std::string& fallback);
// Token id lists ("bos_token_id", "eos_token_id": an integer or a list).
absl::StatusOr<std::vector<int32_t>> TokenIdList(const JsonReader& json, const std::string& key);

}  // namespace ropewire::model
