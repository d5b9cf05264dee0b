#include "model/gguf/gguf_config.h"

#include <cstring>
#include <map>

#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "gguf/str_cat.h"
#include "model/config_json.h"
#include "model/families/families.h"

namespace ropewire::model {
namespace {

using gguf::GgufFile;
using gguf::Metadata;

struct GgufArchitecture {
  const char* name;             // general.architecture
  const char* model_type;       // the Hugging Face model_type it stands for
  const char* hf_architecture;  // and its class
  bool qk_rows_interleaved;     // llama.cpp's converter permuted Q and K (llama only)
};

constexpr GgufArchitecture kArchitectures[] = {
    {"llama", "llama", "LlamaForCausalLM", true},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", false},
};

// llama.cpp's YaRN knobs with no Hugging Face equivalent: refused rather than ignored.
constexpr const char* kUnsupportedRopeKeys[] = {
    "rope.scaling.attn_factor",
    "rope.scaling.yarn_ext_factor",
    "rope.scaling.yarn_attn_factor",
    "rope.scaling.yarn_log_multiplier",
};

absl::StatusOr<const GgufArchitecture*> FindArchitecture(const Metadata& metadata) {
  ASSIGN_OR_RETURN(std::string_view name, metadata.String("general.architecture"));
  for (const GgufArchitecture& arch : kArchitectures) {
    if (name == arch.name) return &arch;
  }
  return absl::UnimplementedError(gguf::Cat(
      metadata.source(), ": general.architecture \"", name,
      "\" is not supported (supported: ", absl::StrJoin(SupportedGgufArchitectures(), ", "), ")"));
}

// `{arch}.rope.scaling.*` → the rope_scaling dict of config.json (null: no scaling).
absl::StatusOr<nlohmann::json> RopeScaling(const Metadata& metadata, const std::string& arch) {
  auto key = [&](std::string_view suffix) { return gguf::Cat(arch, ".", suffix); };
  for (const char* unsupported : kUnsupportedRopeKeys) {
    const std::string k = key(unsupported);
    if (!metadata.Has(k)) continue;
    ASSIGN_OR_RETURN(double value, metadata.Float(k));
    if (value != 1.0 && !(k.ends_with("ext_factor") && value < 0)) {
      return metadata.Error(k, gguf::Cat("is ", value, ": ropewire cannot honour it"));
    }
  }
  std::string type = "none";
  double factor = 1.0;
  if (metadata.Has(key("rope.scale_linear"))) {  // files from before rope.scaling.*
    ASSIGN_OR_RETURN(factor, metadata.Float(key("rope.scale_linear")));
    type = factor == 1.0 ? "none" : "linear";
  }
  if (metadata.Has(key("rope.scaling.type"))) {
    ASSIGN_OR_RETURN(std::string_view name, metadata.String(key("rope.scaling.type")));
    type = std::string(name);
    ASSIGN_OR_RETURN(factor, metadata.Float(key("rope.scaling.factor"), 1.0));
  }
  if (type == "none") return nlohmann::json();
  nlohmann::json rope = {{"rope_type", type}, {"factor", factor}};
  if (type == "linear") return rope;
  if (type != "yarn") {
    return metadata.Error(key("rope.scaling.type"),
                          gguf::Cat("is \"", type, "\" (supported: none, linear, yarn)"));
  }
  ASSIGN_OR_RETURN(int64_t original, metadata.Integer(key("rope.scaling.original_context_length")));
  rope["original_max_position_embeddings"] = original;
  for (const char* beta : {"beta_fast", "beta_slow"}) {
    const std::string k = key(gguf::Cat("rope.scaling.yarn_", beta));
    if (!metadata.Has(k)) continue;
    ASSIGN_OR_RETURN(rope[beta], metadata.Float(k));
  }
  return rope;
}

// head_dim: attention.key_length when given, else hidden / heads; rope.dimension_count must
// cover the whole head (these families rotate all of it).
absl::Status HeadDimension(const Metadata& metadata, const std::string& arch, nlohmann::json& j) {
  const int64_t hidden = j["hidden_size"].get<int64_t>();
  const int64_t heads = j["num_attention_heads"].get<int64_t>();
  if (heads <= 0 || hidden % heads != 0) {
    return metadata.Error(arch + ".attention.head_count",
                          gguf::Cat("(", heads, ") must divide embedding_length (", hidden, ")"));
  }
  ASSIGN_OR_RETURN(int64_t head_dim,
                   metadata.Integer(arch + ".attention.key_length", hidden / heads));
  ASSIGN_OR_RETURN(int64_t value_dim, metadata.Integer(arch + ".attention.value_length", head_dim));
  if (value_dim != head_dim) {
    return metadata.Error(arch + ".attention.value_length",
                          gguf::Cat("is ", value_dim, ", but key_length is ", head_dim));
  }
  ASSIGN_OR_RETURN(int64_t rotary, metadata.Integer(arch + ".rope.dimension_count", head_dim));
  if (rotary != head_dim) {
    return metadata.Error(arch + ".rope.dimension_count",
                          gguf::Cat("is ", rotary, ", but this architecture rotates the whole ",
                                    head_dim, "-value head"));
  }
  j["head_dim"] = head_dim;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> VocabularySize(const GgufFile& file, const std::string& arch) {
  const Metadata& metadata = file.metadata();
  if (metadata.Has("tokenizer.ggml.tokens")) {
    ASSIGN_OR_RETURN(size_t tokens, metadata.ArrayLength("tokenizer.ggml.tokens"));
    return static_cast<int64_t>(tokens);
  }
  if (metadata.Has(arch + ".vocab_size")) return metadata.Integer(arch + ".vocab_size");
  return metadata.Error("tokenizer.ggml.tokens",
                        gguf::Cat("is missing, and so is ", arch, ".vocab_size"));
}

absl::Status RefuseExperts(const Metadata& metadata, const std::string& arch) {
  ASSIGN_OR_RETURN(int64_t experts, metadata.Integer(arch + ".expert_count", 0));
  if (experts > 0) {
    return metadata.Error(arch + ".expert_count", gguf::Cat("is ", experts,
                                                            ": mixture-of-experts models are not "
                                                            "supported"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> SupportedGgufArchitectures() {
  std::vector<std::string> names;
  for (const GgufArchitecture& arch : kArchitectures) names.push_back(arch.name);
  return names;
}

absl::StatusOr<nlohmann::json> GgufToHfConfigJson(const GgufFile& file) {
  const Metadata& metadata = file.metadata();
  ASSIGN_OR_RETURN(const GgufArchitecture* arch, FindArchitecture(metadata));
  const std::string a = arch->name;
  RETURN_IF_ERROR(RefuseExperts(metadata, a));
  nlohmann::json j;
  j["model_type"] = arch->model_type;
  j["architectures"] = {arch->hf_architecture};
  const std::pair<const char*, const char*> kIntegers[] = {
      {"context_length", "max_position_embeddings"},
      {"embedding_length", "hidden_size"},
      {"block_count", "num_hidden_layers"},
      {"feed_forward_length", "intermediate_size"},
      {"attention.head_count", "num_attention_heads"},
  };
  for (const auto& [gguf_key, hf_key] : kIntegers) {
    ASSIGN_OR_RETURN(j[hf_key], metadata.Integer(gguf::Cat(a, ".", gguf_key)));
  }
  ASSIGN_OR_RETURN(
      j["num_key_value_heads"],
      metadata.Integer(a + ".attention.head_count_kv", j["num_attention_heads"].get<int64_t>()));
  RETURN_IF_ERROR(HeadDimension(metadata, a, j));
  ASSIGN_OR_RETURN(j["rms_norm_eps"], metadata.Float(a + ".attention.layer_norm_rms_epsilon"));
  ASSIGN_OR_RETURN(j["rope_theta"], metadata.Float(a + ".rope.freq_base", 10000.0));
  ASSIGN_OR_RETURN(nlohmann::json rope_scaling, RopeScaling(metadata, a));
  if (!rope_scaling.is_null()) j["rope_scaling"] = rope_scaling;
  ASSIGN_OR_RETURN(j["vocab_size"], VocabularySize(file, a));
  // llama.cpp writes the output projection only when it is not the embedding matrix.
  j["tie_word_embeddings"] = file.FindTensor("output.weight") == nullptr;
  j["attention_bias"] = file.FindTensor("blk.0.attn_q.bias") != nullptr;
  j["mlp_bias"] = file.FindTensor("blk.0.ffn_up.bias") != nullptr;
  for (const char* id : {"bos_token_id", "eos_token_id"}) {
    const std::string key = gguf::Cat("tokenizer.ggml.", id);
    if (!metadata.Has(key)) continue;
    ASSIGN_OR_RETURN(j[id], metadata.Integer(key));
  }
  return j;
}

namespace {

// llama.cpp's tensor names for the llama family (Qwen2's are the same, with q/k/v biases).
CheckpointLayout GgufLlamaLayout() {
  CheckpointLayout l;
  l.embed_tokens = "token_embd";
  l.layer_prefix = "blk.$0.";
  l.layer.attn_norm = "attn_norm";
  l.layer.mlp_norm = "ffn_norm";
  l.layer.q = "attn_q";
  l.layer.k = "attn_k";
  l.layer.v = "attn_v";
  l.layer.o = "attn_output";
  l.layer.gate = "ffn_gate";
  l.layer.up = "ffn_up";
  l.layer.down = "ffn_down";
  l.final_norm = "output_norm";
  l.lm_head = "output";
  return l;
}

// The type holding most of the file's bytes ("Q4_1"), for messages and --info.
std::string DominantTensorType(const GgufFile& file) {
  std::map<std::string_view, uint64_t> bytes;
  for (const gguf::TensorInfo& t : file.tensors()) bytes[gguf::Traits(t.type).name] += t.num_bytes;
  std::string_view best;
  uint64_t most = 0;
  for (const auto& [name, count] : bytes) {
    if (count > most) best = name, most = count;
  }
  return std::string(best);
}

// Llama 3.1-style scaling arrives as per-frequency divisors in rope_freqs.weight (llama.cpp
// divides each inverse frequency by its factor).
absl::Status ApplyRopeFrequencyFactors(const GgufFile& file, ModelConfig* config) {
  const gguf::TensorInfo* factors = file.FindTensor("rope_freqs.weight");
  if (factors == nullptr) return absl::OkStatus();
  std::vector<float>& inv_freq = config->position.rope.inv_freq;
  if (factors->type != gguf::TensorType::kF32 ||
      factors->NumElements() != static_cast<int64_t>(inv_freq.size())) {
    return absl::InvalidArgumentError(gguf::Cat(
        file.source(),
        ": tensor \"rope_freqs.weight\" must be F32 with rotary_dim / 2 = ", inv_freq.size(),
        " values, not ", gguf::Traits(factors->type).name, " ", factors->DimsString()));
  }
  for (size_t k = 0; k < inv_freq.size(); ++k) {
    float factor;
    std::memcpy(&factor, factors->data + 4 * k, 4);
    if (!(factor > 0)) {
      return absl::InvalidArgumentError(
          gguf::Cat(file.source(), ": tensor \"rope_freqs.weight\" holds ", factor, " at ", k,
                    "; RoPE frequency factors must be positive"));
    }
    inv_freq[k] /= factor;
  }
  config->position.rope_type = "llama3";
  return absl::OkStatus();
}

absl::Status CheckEmbeddingShape(const GgufFile& file, const ModelConfig& config) {
  ASSIGN_OR_RETURN(const gguf::TensorInfo* embedding, file.Tensor("token_embd.weight"));
  const std::vector<int64_t> expected = {config.hidden_size, config.vocab_size};
  if (embedding->dims != expected) {
    return absl::InvalidArgumentError(
        gguf::Cat(file.source(), ": tensor \"token_embd.weight\" has dims ",
                  embedding->DimsString(), ", but the metadata gives embedding_length ",
                  config.hidden_size, " and ", config.vocab_size, " tokens"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GgufModelDescription> DescribeGgufModel(const GgufFile& file) {
  ASSIGN_OR_RETURN(nlohmann::json json, GgufToHfConfigJson(file));
  ASSIGN_OR_RETURN(const GgufArchitecture* arch, FindArchitecture(file.metadata()));
  GgufModelDescription model;
  ASSIGN_OR_RETURN(
      model.config,
      ParseModelConfig(json.dump(), gguf::Cat(file.source(), " (metadata as config.json)")));
  model.config.source = file.source();
  model.config.torch_dtype = DominantTensorType(file);
  RETURN_IF_ERROR(ApplyRopeFrequencyFactors(file, &model.config));
  RETURN_IF_ERROR(CheckEmbeddingShape(file, model.config));
  model.layout = GgufLlamaLayout();
  model.qk_rows_interleaved = arch->qk_rows_interleaved;
  return model;
}

}  // namespace ropewire::model
