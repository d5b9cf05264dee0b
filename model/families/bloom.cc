// BLOOM: ALiBi (BLOOM slopes for any head count, unscaled bias), a LayerNorm right after the
// word embeddings, fused query_key_value rows per head, BLOOM's tanh-GELU, biases everywhere,
// tied LM head.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
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
  if (post_ln_residual) {
    return json.Error("apply_residual_connection_post_layernorm", "true is not supported");
  }
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  // BLOOM configs name no trained length; ALiBi addresses no table.
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.Int("seq_length", 0));
  UseAlibi(kernels::AlibiSlopes(c->num_heads), c);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CausalLm>> LoadBloom(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens,
                   loader.Load("transformer.word_embeddings.weight", c.vocab_size, c.hidden_size));
  ASSIGN_OR_RETURN(w.embed_norm,
                   LoadNorm(loader, "transformer.word_embeddings_layernorm", c.hidden_size, true));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("transformer.h.", i, ".");
    LayerNames names;
    names.attn_norm = p + "input_layernorm";
    names.mlp_norm = p + "post_attention_layernorm";
    names.qkv = p + "self_attention.query_key_value";
    names.qkv_layout = FusedQkvLayout::kPerHead;
    names.o = p + "self_attention.dense";
    names.up = p + "mlp.dense_h_to_4h";
    names.down = p + "mlp.dense_4h_to_h";
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadLayer(c, loader, names));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(LoadHead(c, loader, "transformer.ln_f", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
