// Llama family (llama, mistral, qwen2) and Phi-3. Weight names are exactly those transformers
// saves; the layout is read by model/families/checkpoint_loader.h.
#include "model/families/families.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/position_config.h"

namespace ropewire::model {

namespace {

// Sizes far beyond any model's: a value past them is a corrupt file, refused before it sizes
// per-layer or per-frequency tables (or overflows the int the config keeps counts in).
constexpr int64_t kMaxCount = int64_t(1) << 16;  // layers, heads, head_dim
constexpr int64_t kMaxWidth = int64_t(1) << 24;  // vocabulary, hidden and intermediate sizes

absl::Status CheckAtMost(const JsonReader& json, const std::string& key, int64_t value,
                         int64_t limit) {
  if (value <= limit) return absl::OkStatus();
  return json.Error(key,
                    absl::StrCat("is ", value, ", more than any model has (at most ", limit, ")"));
}

}  // namespace

absl::Status ParseLlamaDimensions(const JsonReader& json, const RopeRules& rope, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->vocab_size, json.PositiveInt("vocab_size"));
  ASSIGN_OR_RETURN(c->hidden_size, json.PositiveInt("hidden_size"));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(int64_t layers, json.PositiveInt("num_hidden_layers"));
  ASSIGN_OR_RETURN(int64_t heads, json.PositiveInt("num_attention_heads"));
  ASSIGN_OR_RETURN(int64_t kv_heads, json.PositiveInt("num_key_value_heads", heads));
  RETURN_IF_ERROR(CheckAtMost(json, "vocab_size", c->vocab_size, kMaxWidth));
  RETURN_IF_ERROR(CheckAtMost(json, "hidden_size", c->hidden_size, kMaxWidth));
  RETURN_IF_ERROR(CheckAtMost(json, "intermediate_size", c->intermediate_size, kMaxWidth));
  RETURN_IF_ERROR(CheckAtMost(json, "num_hidden_layers", layers, kMaxCount));
  RETURN_IF_ERROR(CheckAtMost(json, "num_attention_heads", heads, kMaxCount));
  RETURN_IF_ERROR(CheckAtMost(json, "num_key_value_heads", kv_heads, kMaxCount));
  c->num_layers = static_cast<int>(layers);
  c->num_heads = static_cast<int>(heads);
  c->num_kv_heads = static_cast<int>(kv_heads);
  if (heads % kv_heads != 0) {
    return json.Error(
        "num_key_value_heads",
        absl::StrCat("(", kv_heads, ") must divide num_attention_heads (", heads, ")"));
  }
  if (!json.Has("head_dim") && c->hidden_size % heads != 0) {
    return json.Error("hidden_size", "must be divisible by num_attention_heads");
  }
  ASSIGN_OR_RETURN(int64_t head_dim, json.PositiveInt("head_dim", c->hidden_size / heads));
  RETURN_IF_ERROR(CheckAtMost(json, "head_dim", head_dim, kMaxCount));
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
  return ResolveRopeEncoding(json, rope, c);
}

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

CheckpointLayout LlamaStyleLayout(bool fused) {
  CheckpointLayout l;
  l.embed_tokens = "model.embed_tokens";
  l.layer_prefix = "model.layers.$0.";
  l.layer.attn_norm = "input_layernorm";
  l.layer.mlp_norm = "post_attention_layernorm";
  if (fused) {
    l.layer.qkv = "self_attn.qkv_proj";
    l.layer.gate_up = "mlp.gate_up_proj";
  } else {
    l.layer.q = "self_attn.q_proj";
    l.layer.k = "self_attn.k_proj";
    l.layer.v = "self_attn.v_proj";
    l.layer.gate = "mlp.gate_proj";
    l.layer.up = "mlp.up_proj";
  }
  l.layer.o = "self_attn.o_proj";
  l.layer.down = "mlp.down_proj";
  l.final_norm = "model.norm";
  l.lm_head = "lm_head";
  return l;
}

namespace {

RopeRules LlamaRope() {
  RopeRules rules;
  rules.whole_head_only = true;
  return rules;
}

}  // namespace

absl::Status ParseLlamaConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, LlamaRope(), c));
  ASSIGN_OR_RETURN(bool attention_bias, json.Bool("attention_bias", false));
  c->qkv_bias = c->o_bias = attention_bias;
  ASSIGN_OR_RETURN(c->mlp_bias, json.Bool("mlp_bias", false));
  return ParseSlidingWindows(json, false, 0, c);
}

absl::Status ParseMistralConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, LlamaRope(), c));
  return ParseSlidingWindows(json, true, 0, c);
}

absl::Status ParseQwen2Config(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseLlamaDimensions(json, LlamaRope(), c));
  c->qkv_bias = true;  // Qwen2 always has q/k/v biases and none on o_proj
  ASSIGN_OR_RETURN(bool use_sliding, json.Bool("use_sliding_window", false));
  ASSIGN_OR_RETURN(int64_t max_window_layers, json.Int("max_window_layers", c->num_layers));
  return ParseSlidingWindows(json, use_sliding, max_window_layers, c);
}

CheckpointLayout LlamaLayout(const ModelConfig&) { return LlamaStyleLayout(/*fused=*/false); }

}  // namespace ropewire::model
