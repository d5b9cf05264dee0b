#include "model/families/registry.h"

#include "model/families/families.h"

namespace ropewire::model {

const std::vector<ModelFamily>& ModelFamilies() {
  static const auto* families = new std::vector<ModelFamily>{
      {"bloom", ParseBloomConfig, BloomLayout},     {"falcon", ParseFalconConfig, FalconLayout},
      {"gpt2", ParseGpt2Config, Gpt2Layout},        {"gpt_neox", ParseGptNeoxConfig, GptNeoxLayout},
      {"gptj", ParseGptjConfig, GptjLayout},        {"llama", ParseLlamaConfig, LlamaLayout},
      {"mistral", ParseMistralConfig, LlamaLayout}, {"mpt", ParseMptConfig, MptLayout},
      {"opt", ParseOptConfig, OptLayout},           {"phi", ParsePhiConfig, PhiLayout},
      {"phi3", ParsePhi3Config, Phi3Layout},        {"qwen2", ParseQwen2Config, LlamaLayout},
      {"xglm", ParseXglmConfig, XglmLayout},
  };
  return *families;
}

const ModelFamily* FindModelFamily(const std::string& model_type) {
  for (const auto& family : ModelFamilies()) {
    if (family.model_type == model_type) return &family;
  }
  return nullptr;
}

}  // namespace ropewire::model
