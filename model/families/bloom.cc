// BLOOM: ALiBi (BLOOM slopes for any head count, unscaled bias), a LayerNorm right after the
// word embeddings, fused query_key_value rows per head, BLOOM's tanh-GELU, biases everywhere,
// tied LM head; apply_residual_connection_post_layernorm continues the residual stream from the
// normed values.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::Status ParseBloomConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"hidden_size", "n_embed"},
                                       {"n_layer", "num_hidden_layers"},
                                       {"n_head", "num_attention_heads"}, c));
  c->intermediate_size = 4 * c->hidden_size;
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  c->activation = Activation::kBloomGelu;
  c->embedding_norm = true;
  c->qkv_bias = c->o_bias = c->mlp_bias = true;
  ASSIGN_OR_RETURN(bool post_ln_residual,
                   json.Bool("apply_residual_connection_post_layernorm", false));
  if (post_ln_residual) c->residual = ResidualLayout::kNormedResidual;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  // BLOOM configs name no trained length; ALiBi addresses no table.
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.Int("seq_length", 0));
  UseAlibi(kernels::AlibiSlopes(c->num_heads), c);
  return absl::OkStatus();
}

CheckpointLayout BloomLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "transformer.word_embeddings";
  l.embed_norm = "transformer.word_embeddings_layernorm";
  l.layer_prefix = "transformer.h.$0.";
  l.layer.attn_norm = "input_layernorm";
  l.layer.mlp_norm = "post_attention_layernorm";
  l.layer.qkv = "self_attention.query_key_value";
  l.layer.qkv_layout = FusedQkvLayout::kPerHead;
  l.layer.o = "self_attention.dense";
  l.layer.up = "mlp.dense_h_to_4h";
  l.layer.down = "mlp.dense_4h_to_h";
  l.final_norm = "transformer.ln_f";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
