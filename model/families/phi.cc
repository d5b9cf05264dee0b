// Phi-1/1.5/2: partial rotary (partial_rotary_factor, default 0.5; phi-2 0.4) in the NeoX
// layout, one input_layernorm feeding attention and MLP in parallel, biases everywhere
// including the LM head, attention output named `dense`.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
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

CheckpointLayout PhiLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "model.embed_tokens";
  l.layer_prefix = "model.layers.$0.";
  l.layer.attn_norm = "input_layernorm";
  l.layer.q = "self_attn.q_proj";
  l.layer.k = "self_attn.k_proj";
  l.layer.v = "self_attn.v_proj";
  l.layer.o = "self_attn.dense";
  l.layer.up = "mlp.fc1";
  l.layer.down = "mlp.fc2";
  l.final_norm = "model.final_layernorm";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
