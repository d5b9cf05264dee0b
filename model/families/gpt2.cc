// GPT-2: learned absolute positions (wpe, n_positions rows), Conv1D weights stored [in, out]
// (transposed at load), fused c_attn = [q; k; v], gelu_new, tied LM head.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"

namespace ropewire::model {
absl::Status ParseGpt2Config(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"n_embd"}, {"n_layer"}, {"n_head"}, c));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("n_inner", 4 * c->hidden_size));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("n_positions", 1024));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "activation_function", "gelu_new"));
  c->qkv_bias = c->o_bias = c->mlp_bias = true;
  ASSIGN_OR_RETURN(bool scale_attn, json.Bool("scale_attn_weights", true));
  if (!scale_attn) c->softmax_scale = 1.0f;
  ASSIGN_OR_RETURN(c->scale_attn_by_inverse_layer_idx,
                   json.Bool("scale_attn_by_inverse_layer_idx", false));
  ASSIGN_OR_RETURN(bool cross, json.Bool("add_cross_attention", false));
  if (cross) return json.Error("add_cross_attention", "true is not supported");
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  c->position.kind = kernels::PositionKind::kLearned;
  c->position.absolute.table_rows = c->max_position_embeddings;
  c->max_model_len = c->max_position_embeddings;
  return absl::OkStatus();
}

CheckpointLayout Gpt2Layout(const ModelConfig&) {
  CheckpointLayout l;
  l.roots = {"transformer.", ""};
  l.embed_tokens = "wte";
  l.position_table = "wpe";
  l.layer_prefix = "h.$0.";
  l.layer.attn_norm = "ln_1";
  l.layer.mlp_norm = "ln_2";
  l.layer.qkv = "attn.c_attn";
  l.layer.o = "attn.c_proj";
  l.layer.up = "mlp.c_fc";
  l.layer.down = "mlp.c_proj";
  l.final_norm = "ln_f";
  l.lm_head = "lm_head";
  l.transposed_linears = true;
  return l;
}

}  // namespace ropewire::model
