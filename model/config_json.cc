#include "model/config_json.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/families/registry.h"
#include "model/json_reader.h"

namespace ropewire::model {

absl::StatusOr<std::vector<int32_t>> TokenIdList(const JsonReader& json, const std::string& key) {
  std::vector<int32_t> ids;
  if (!json.Has(key)) return ids;
  const auto& value = json.object().at(key);
  if (value.is_number_integer()) {
    ids.push_back(value.get<int32_t>());
  } else if (value.is_array()) {
    for (const auto& id : value) {
      if (!id.is_number_integer()) return json.Error(key, "must hold integers");
      ids.push_back(id.get<int32_t>());
    }
  } else {
    return json.Error(key, "must be an integer or a list of integers");
  }
  return ids;
}

absl::StatusOr<Activation> ParseActivation(const JsonReader& json, const std::string& key,
                                           const std::string& fallback) {
  ASSIGN_OR_RETURN(std::string name, json.String(key, fallback));
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  if (name == "relu") return Activation::kRelu;
  return json.Error(key, absl::StrCat("names an unsupported activation \"", name, "\""));
}

std::vector<std::string> SupportedModelTypes() {
  std::vector<std::string> types;
  for (const auto& family : ModelFamilies()) types.push_back(family.model_type);
  return types;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON"));
  if (!j.is_object())
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  const JsonReader json(j, source);
  ModelConfig config;
  config.source = source;
  ASSIGN_OR_RETURN(config.model_type, json.String("model_type"));
  const ModelFamily* family = FindModelFamily(config.model_type);
  if (family == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": unsupported model_type \"", config.model_type,
                     "\" (supported: ", absl::StrJoin(SupportedModelTypes(), ", "), ")"));
  }
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    config.architecture = j["architectures"][0].get<std::string>();
  }
  RETURN_IF_ERROR(family->parse(json, &config));
  ASSIGN_OR_RETURN(config.bos_token_ids, TokenIdList(json, "bos_token_id"));
  ASSIGN_OR_RETURN(config.eos_token_ids, TokenIdList(json, "eos_token_id"));
  ASSIGN_OR_RETURN(config.torch_dtype,
                   json.String("dtype", json.Has("torch_dtype") ? "" : "float32"));
  if (config.torch_dtype.empty()) {
    ASSIGN_OR_RETURN(config.torch_dtype, json.String("torch_dtype"));
  }
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  nlohmann::json j;
  RETURN_IF_ERROR(ReadJsonFile(path, &j));
  return ParseModelConfig(j.dump(), path);
}

}  // namespace ropewire::model
