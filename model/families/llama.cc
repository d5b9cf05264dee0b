// Llama family (llama, mistral, qwen2) and Phi-3. Weight names are exactly those transformers
// saves; the forward pass is the shared decoder (families/decoder.h).
#include "model/families/families.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
#include "model/position_config.h"
#include "model/weights.h"

namespace ropewire::model {

absl::Status ParseLlamaDimensions(const JsonReader& json, const RopeRules& rope, ModelConfig* c) {
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

namespace {

absl::StatusOr<DecoderLayerWeights> LoadLlamaLayer(const ModelConfig& c, const WeightLoader& loader,
                                                   int index, bool fused) {
  DecoderLayerWeights layer;
  const std::string p = absl::StrCat("model.layers.", index, ".");
  const int64_t q_rows = int64_t(c.num_heads) * c.head_dim;
  const int64_t kv_rows = int64_t(c.num_kv_heads) * c.head_dim;
  const int64_t h = c.hidden_size;
  const int64_t inter = c.intermediate_size;
  ASSIGN_OR_RETURN(layer.attn_norm, LoadNorm(loader, p + "input_layernorm", h, false));
  ASSIGN_OR_RETURN(layer.mlp_norm, LoadNorm(loader, p + "post_attention_layernorm", h, false));
  const std::string a = p + "self_attn.";
  const std::string m = p + "mlp.";
  if (fused) {
    ASSIGN_OR_RETURN(layer.qkv, loader.Load(a + "qkv_proj.weight", q_rows + 2 * kv_rows, h));
    ASSIGN_OR_RETURN(layer.up, loader.Load(m + "gate_up_proj.weight", 2 * inter, h));
  } else {
    ASSIGN_OR_RETURN(layer.qkv, loader.LoadStacked({a + "q_proj.weight", a + "k_proj.weight",
                                                    a + "v_proj.weight"},
                                                   {q_rows, kv_rows, kv_rows}, h));
    ASSIGN_OR_RETURN(layer.up, loader.LoadStacked({m + "gate_proj.weight", m + "up_proj.weight"},
                                                  {inter, inter}, h));
  }
  if (c.qkv_bias) {
    ASSIGN_OR_RETURN(layer.qkv_bias, loader.LoadConcatenated(
                                         {a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"},
                                         {q_rows, kv_rows, kv_rows}));
  }
  ASSIGN_OR_RETURN(layer.o_proj, LoadLinear(loader, a + "o_proj", h, q_rows, c.o_bias, &layer.o_bias));
  ASSIGN_OR_RETURN(layer.down, loader.Load(m + "down_proj.weight", h, inter));
  if (c.mlp_bias) {
    ASSIGN_OR_RETURN(layer.up_bias, loader.LoadConcatenated({m + "gate_proj.bias", m + "up_proj.bias"},
                                                            {inter, inter}));
    ASSIGN_OR_RETURN(layer.down_bias, loader.LoadVector(m + "down_proj.bias", h));
  }
  return layer;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CausalLm>> LoadLlamaStyle(const ModelConfig& c,
                                                         const TensorStore& store, bool fused) {
  const WeightLoader loader(store);
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load("model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadLlamaLayer(c, loader, i, fused));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm, LoadNorm(loader, "model.norm", c.hidden_size, false));
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(w.lm_head, loader.Load("lm_head.weight", c.vocab_size, c.hidden_size));
  }
  return MakeDecoder(c, std::move(w));
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

absl::StatusOr<std::unique_ptr<CausalLm>> LoadLlama(const ModelConfig& config,
                                                   const TensorStore& store) {
  return LoadLlamaStyle(config, store, /*fused=*/false);
}

}  // namespace ropewire::model
