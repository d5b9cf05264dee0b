// GPT-NeoX (Pythia): partial rotary (rotary_pct, default 0.25) in the NeoX layout, LayerNorms
// with biases, fused query_key_value rows per head, parallel residual by default.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::Status ParseGptNeoxConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"hidden_size"}, {"num_hidden_layers"},
                                       {"num_attention_heads"}, c));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings", 2048));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_eps", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "hidden_act", "gelu"));
  ASSIGN_OR_RETURN(bool parallel, json.Bool("use_parallel_residual", true));
  c->residual = parallel ? ResidualLayout::kParallelTwoNorms : ResidualLayout::kSequential;
  ASSIGN_OR_RETURN(bool attention_bias, json.Bool("attention_bias", true));
  c->qkv_bias = c->o_bias = attention_bias;
  c->mlp_bias = true;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", false));
  RopeRules rope;
  rope.theta_alias = "rotary_emb_base";  // 4.x spelling
  rope.partial_alias = "rotary_pct";
  rope.default_partial = 0.25;
  return ResolveRopeEncoding(json, rope, c);
}

CheckpointLayout GptNeoxLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "gpt_neox.embed_in";
  l.layer_prefix = "gpt_neox.layers.$0.";
  l.layer.attn_norm = "input_layernorm";
  l.layer.mlp_norm = "post_attention_layernorm";
  l.layer.qkv = "attention.query_key_value";
  l.layer.qkv_layout = FusedQkvLayout::kPerHead;
  l.layer.o = "attention.dense";
  l.layer.up = "mlp.dense_h_to_4h";
  l.layer.down = "mlp.dense_4h_to_h";
  l.final_norm = "gpt_neox.final_layer_norm";
  l.lm_head = "embed_out";
  return l;
}

}  // namespace ropewire::model
