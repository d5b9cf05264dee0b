// XGLM: fixed sinusoidal positions (fairseq: sin half then cos half, denominator half - 1, row
// p + 2, zero padding row), token embeddings scaled by sqrt(d_model), pre-LayerNorm blocks with
// a final layer_norm, exact GELU, tied LM head.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"

namespace ropewire::model {

absl::Status ParseXglmConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"d_model"}, {"num_layers"}, {"attention_heads"}, c));
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("ffn_dim"));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings", 2048));
  c->norm = NormKind::kLayerNorm;
  c->norm_eps = 1e-5f;  // nn.LayerNorm's default; XGLM configs carry no epsilon
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "activation_function", "gelu"));
  c->qkv_bias = c->o_bias = c->mlp_bias = true;
  ASSIGN_OR_RETURN(bool scale, json.Bool("scale_embedding", true));
  if (scale) c->embedding_scale = static_cast<float>(std::sqrt(double(c->hidden_size)));
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  ASSIGN_OR_RETURN(int64_t padding_idx, json.Int("pad_token_id", 1));
  c->position.kind = kernels::PositionKind::kSinusoidal;
  c->position.absolute.offset = 2;
  c->position.absolute.table_rows = c->max_position_embeddings + 2;
  c->position.absolute.padding_idx = static_cast<int>(padding_idx);
  c->max_model_len = c->max_position_embeddings;
  return absl::OkStatus();
}

CheckpointLayout XglmLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "model.embed_tokens";
  l.layer_prefix = "model.layers.$0.";
  l.layer.attn_norm = "self_attn_layer_norm";
  l.layer.mlp_norm = "final_layer_norm";
  l.layer.q = "self_attn.q_proj";
  l.layer.k = "self_attn.k_proj";
  l.layer.v = "self_attn.v_proj";
  l.layer.o = "self_attn.out_proj";
  l.layer.up = "fc1";
  l.layer.down = "fc2";
  l.final_norm = "model.layer_norm";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
