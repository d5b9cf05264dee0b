// Phi-1/1.5/2: partial rotary (partial_rotary_factor, default 0.5; phi-2 0.4) in the NeoX
// layout, one input_layernorm feeding attention and MLP in parallel, biases everywhere
// including the LM head, attention output named `dense`.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::Status ParsePhiConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"hidden_size"}, {"num_hidden_layers"},
                                       {"num_attention_heads"}, c));
  ASSIGN_OR_RETURN(int64_t kv_heads, json.PositiveInt("num_key_value_heads", c->num_heads));
  if (c->num_heads % kv_heads != 0) {
    return json.Error("num_key_value_heads", "must divide num_attention_heads");
  }
  c->num_kv_heads = static_cast<int>(kv_heads);
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings", 2048));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_eps", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "hidden_act", "gelu_new"));
  ASSIGN_OR_RETURN(bool qk_layernorm, json.Bool("qk_layernorm", false));
  if (qk_layernorm) return json.Error("qk_layernorm", "true is not supported");
  c->residual = ResidualLayout::kParallelSharedNorm;
  c->qkv_bias = c->o_bias = c->mlp_bias = c->lm_head_bias = true;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", false));
  RopeRules rope;
  rope.default_partial = 0.5;
  return ResolveRopeEncoding(json, rope, c);
}

absl::StatusOr<std::unique_ptr<CausalLm>> LoadPhi(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load("model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerNames names;
    names.attn_norm = p + "input_layernorm";
    names.q = p + "self_attn.q_proj";
    names.k = p + "self_attn.k_proj";
    names.v = p + "self_attn.v_proj";
    names.o = p + "self_attn.dense";
    names.up = p + "mlp.fc1";
    names.down = p + "mlp.fc2";
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadLayer(c, loader, names));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(LoadHead(c, loader, "model.final_layernorm", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
