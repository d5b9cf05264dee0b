// OPT: learned absolute positions with fairseq's offset of 2 (row p + 2 of a
// max_position_embeddings + 2 table), pre-LayerNorm blocks (post-LayerNorm ones with
// do_layer_norm_before: false, as opt-350m), ReLU MLP, project_in/project_out when
// word_embed_proj_dim differs from hidden_size, tied LM head.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"

namespace ropewire::model {

absl::Status ParseOptConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"hidden_size"}, {"num_hidden_layers"},
                                       {"num_attention_heads"}, c));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("ffn_dim"));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings", 2048));
  c->norm = NormKind::kLayerNorm;
  c->norm_eps = 1e-5f;  // nn.LayerNorm's default; OPT configs carry no epsilon
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "activation_function", "relu"));
  // opt-350m normalises after each residual add, and has no final norm then.
  ASSIGN_OR_RETURN(bool pre_ln, json.Bool("do_layer_norm_before", true));
  if (!pre_ln) c->residual = ResidualLayout::kPostNorm;
  ASSIGN_OR_RETURN(bool affine, json.Bool("layer_norm_elementwise_affine", true));
  if (!affine) return json.Error("layer_norm_elementwise_affine", "false is not supported");
  ASSIGN_OR_RETURN(bool bias, json.Bool("enable_bias", true));
  c->qkv_bias = c->o_bias = c->mlp_bias = bias;
  ASSIGN_OR_RETURN(bool remove_final, json.Bool("_remove_final_layer_norm", false));
  c->final_norm = pre_ln && !remove_final;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  ASSIGN_OR_RETURN(int64_t projected, json.PositiveInt("word_embed_proj_dim", c->hidden_size));
  if (projected != c->hidden_size) c->embedding_dim = projected;
  c->position.kind = kernels::PositionKind::kLearned;
  c->position.absolute.offset = 2;
  c->position.absolute.table_rows = c->max_position_embeddings + 2;
  c->max_model_len = c->max_position_embeddings;
  return absl::OkStatus();
}

CheckpointLayout OptLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "model.decoder.embed_tokens";
  l.position_table = "model.decoder.embed_positions";
  l.project_in = "model.decoder.project_in";
  l.project_out = "model.decoder.project_out";
  l.layer_prefix = "model.decoder.layers.$0.";
  l.layer.attn_norm = "self_attn_layer_norm";
  l.layer.mlp_norm = "final_layer_norm";
  l.layer.q = "self_attn.q_proj";
  l.layer.k = "self_attn.k_proj";
  l.layer.v = "self_attn.v_proj";
  l.layer.o = "self_attn.out_proj";
  l.layer.up = "fc1";
  l.layer.down = "fc2";
  l.final_norm = "model.decoder.final_layer_norm";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
