// GPT-J: interleaved (GPT-J layout) partial rotary over `rotary_dim` channels with theta fixed
// at 10000 and positions limited to n_positions; one shared ln_1 feeding attention and MLP in
// parallel; bias-free q/k/v/out projections; an LM head with a bias.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::Status ParseGptjConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"n_embd"}, {"n_layer"}, {"n_head"}, c));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("n_inner", 4 * c->hidden_size));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("n_positions", 2048));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "activation_function", "gelu_new"));
  c->residual = ResidualLayout::kParallelSharedNorm;
  c->mlp_bias = true;
  c->lm_head_bias = true;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", false));
  RopeRules rope;
  rope.rotary_dim_key = "rotary_dim";
  rope.fixed_unscaled = true;
  rope.layout = kernels::RopeLayout::kInterleaved;
  return ResolveRopeEncoding(json, rope, c);
}

CheckpointLayout GptjLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "transformer.wte";
  l.layer_prefix = "transformer.h.$0.";
  l.layer.attn_norm = "ln_1";
  l.layer.q = "attn.q_proj";
  l.layer.k = "attn.k_proj";
  l.layer.v = "attn.v_proj";
  l.layer.o = "attn.out_proj";
  l.layer.up = "mlp.fc_in";
  l.layer.down = "mlp.fc_out";
  l.final_norm = "transformer.ln_f";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
