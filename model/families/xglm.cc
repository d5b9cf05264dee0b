// XGLM: fixed sinusoidal positions (fairseq: sin half then cos half, denominator half - 1, row
// p + 2, zero padding row), token embeddings scaled by sqrt(d_model), pre-LayerNorm blocks with
// a final layer_norm, exact GELU, tied LM head.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
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

absl::StatusOr<std::unique_ptr<CausalLm>> LoadXglm(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load("model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  const kernels::AbsoluteSpec& table = c.position.absolute;
  w.position_table.rows = table.table_rows;
  w.position_table.cols = c.hidden_size;
  const std::vector<float> position_table = kernels::SinusoidalPositionTable(
      table.table_rows, static_cast<int>(c.hidden_size), table.padding_idx);
  w.position_table.data.assign(position_table.begin(), position_table.end());
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LayerNames names;
    names.attn_norm = p + "self_attn_layer_norm";
    names.mlp_norm = p + "final_layer_norm";
    names.q = p + "self_attn.q_proj";
    names.k = p + "self_attn.k_proj";
    names.v = p + "self_attn.v_proj";
    names.o = p + "self_attn.out_proj";
    names.up = p + "fc1";
    names.down = p + "fc2";
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadLayer(c, loader, names));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(LoadHead(c, loader, "model.layer_norm", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
