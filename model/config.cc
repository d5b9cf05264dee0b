#include "model/config.h"

#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/json_reader.h"
#include "model/position_config.h"

namespace ropewire::model {
namespace {

using FamilyParser = std::function<absl::Status(const JsonReader&, ModelConfig*)>;

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

// Dimensions shared by the Llama-style configs (llama, mistral, qwen2).
absl::Status ParseLlamaDimensions(const JsonReader& json, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->vocab_size, json.PositiveInt("vocab_size"));
  ASSIGN_OR_RETURN(c->hidden_size, json.PositiveInt("hidden_size"));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(int64_t layers, json.PositiveInt("num_hidden_layers"));
  ASSIGN_OR_RETURN(int64_t heads, json.PositiveInt("num_attention_heads"));
  ASSIGN_OR_RETURN(int64_t kv_heads, json.PositiveInt("num_key_value_heads", heads));
  c->num_layers = static_cast<int>(layers);
  c->num_heads = static_cast<int>(heads);
  c->num_kv_heads = static_cast<int>(kv_heads);
  if (heads % kv_heads != 0) {
    return json.Error("num_key_value_heads",
                      absl::StrCat("(", kv_heads, ") must divide num_attention_heads (", heads, ")"));
  }
  if (!json.Has("head_dim") && c->hidden_size % heads != 0) {
    return json.Error("hidden_size", "must be divisible by num_attention_heads");
  }
  ASSIGN_OR_RETURN(int64_t head_dim, json.PositiveInt("head_dim", c->hidden_size / heads));
  c->head_dim = static_cast<int>(head_dim);
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings"));
  ASSIGN_OR_RETURN(double eps, json.Double("rms_norm_eps", 1e-6));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kRmsNorm;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "hidden_act", "silu"));
  if (c->activation != Activation::kSilu) {
    return json.Error("hidden_act", "must be \"silu\" for this model type");
  }
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", false));
  return ResolvePositionEncoding(json, c);
}

// Per-layer sliding windows from `layer_types` (transformers 5.x) or from the 4.x keys.
absl::Status ParseSlidingWindows(const JsonReader& json, bool enabled, int64_t first_window_layer,
                                 ModelConfig* c) {
  c->sliding_window.assign(c->num_layers, 0);
  if (!enabled || !json.Has("sliding_window")) return absl::OkStatus();
  ASSIGN_OR_RETURN(int64_t window, json.PositiveInt("sliding_window"));
  const auto& types = json.object().find("layer_types");
  if (types != json.object().end() && types->is_array()) {
    if (static_cast<int>(types->size()) != c->num_layers) {
      return json.Error("layer_types", "must have one entry per layer");
    }
    for (int i = 0; i < c->num_layers; ++i) {
      if ((*types)[i] == "sliding_attention") c->sliding_window[i] = static_cast<int>(window);
    }
    return absl::OkStatus();
  }
  for (int i = static_cast<int>(first_window_layer); i < c->num_layers; ++i) {
    c->sliding_window[i] = static_cast<int>(window);
  }
  return absl::OkStatus();
}

absl::Status ParseLlama(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, c));
  ASSIGN_OR_RETURN(bool attention_bias, json.Bool("attention_bias", false));
  c->qkv_bias = c->o_bias = attention_bias;
  ASSIGN_OR_RETURN(c->mlp_bias, json.Bool("mlp_bias", false));
  return ParseSlidingWindows(json, false, 0, c);
}

absl::Status ParseMistral(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, c));
  return ParseSlidingWindows(json, true, 0, c);
}

absl::Status ParseQwen2(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, c));
  c->qkv_bias = true;  // Qwen2 always has q/k/v biases and none on o_proj
  ASSIGN_OR_RETURN(bool use_sliding, json.Bool("use_sliding_window", false));
  ASSIGN_OR_RETURN(int64_t max_window_layers, json.Int("max_window_layers", c->num_layers));
  return ParseSlidingWindows(json, use_sliding, max_window_layers, c);
}

const std::map<std::string, FamilyParser>& FamilyParsers() {
  static const auto* parsers = new std::map<std::string, FamilyParser>{
      {"llama", ParseLlama},
      {"mistral", ParseMistral},
      {"qwen2", ParseQwen2},
  };
  return *parsers;
}

}  // namespace

std::vector<std::string> SupportedModelTypes() {
  std::vector<std::string> types;
  for (const auto& [name, parser] : FamilyParsers()) types.push_back(name);
  return types;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  const JsonReader json(j, source);
  ModelConfig config;
  config.source = source;
  ASSIGN_OR_RETURN(config.model_type, json.String("model_type"));
  auto parser = FamilyParsers().find(config.model_type);
  if (parser == FamilyParsers().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": unsupported model_type \"", config.model_type,
        "\" (supported: ", absl::StrJoin(SupportedModelTypes(), ", "), ")"));
  }
  if (j.contains("architectures") && j["architectures"].is_array() &&
      !j["architectures"].empty() && j["architectures"][0].is_string()) {
    config.architecture = j["architectures"][0].get<std::string>();
  }
  RETURN_IF_ERROR(parser->second(json, &config));
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
