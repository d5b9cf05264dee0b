#include "model/families/registry.h"

#include <algorithm>

#include "base/status_macros.h"
#include "model/families/families.h"

namespace ropewire::model {

const std::vector<ModelFamily>& ModelFamilies() {
  static const auto* families = new std::vector<ModelFamily>{
      {"bloom", ParseBloomConfig, LoadBloom},
      {"falcon", ParseFalconConfig, LoadFalcon},
      {"gpt2", ParseGpt2Config, LoadGpt2},
      {"gpt_neox", ParseGptNeoxConfig, LoadGptNeox},
      {"gptj", ParseGptjConfig, LoadGptj},
      {"llama", ParseLlamaConfig, LoadLlama},
      {"mistral", ParseMistralConfig, LoadLlama},
      {"mpt", ParseMptConfig, LoadMpt},
      {"opt", ParseOptConfig, LoadOpt},
      {"phi", ParsePhiConfig, LoadPhi},
      {"phi3", ParsePhi3Config, LoadPhi3},
      {"qwen2", ParseQwen2Config, LoadLlama},
      {"xglm", ParseXglmConfig, LoadXglm},
  };
  return *families;
}

const ModelFamily* FindModelFamily(const std::string& model_type) {
  for (const auto& family : ModelFamilies()) {
    if (family.model_type == model_type) return &family;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<CausalLm>> LoadCausalLm(const std::string& dir) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(auto store, TensorStore::Open(dir));
  // LoadModelConfig only accepts model types that have a family.
  return FindModelFamily(config.model_type)->load(config, *store);
}

}  // namespace ropewire::model
