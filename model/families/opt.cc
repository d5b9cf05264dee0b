// OPT: learned absolute positions with fairseq's offset of 2 (row p + 2 of a
// max_position_embeddings + 2 table), pre-LayerNorm blocks, ReLU MLP, project_in/project_out
// when word_embed_proj_dim differs from hidden_size, tied LM head.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
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
  ASSIGN_OR_RETURN(bool pre_ln, json.Bool("do_layer_norm_before", true));
  if (!pre_ln) return json.Error("do_layer_norm_before", "false (post-LN, opt-350m) is not supported");
  ASSIGN_OR_RETURN(bool affine, json.Bool("layer_norm_elementwise_affine", true));
  if (!affine) return json.Error("layer_norm_elementwise_affine", "false is not supported");
  ASSIGN_OR_RETURN(bool bias, json.Bool("enable_bias", true));
  c->qkv_bias = c->o_bias = c->mlp_bias = bias;
  ASSIGN_OR_RETURN(bool remove_final, json.Bool("_remove_final_layer_norm", false));
  c->final_norm = !remove_final;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  ASSIGN_OR_RETURN(int64_t projected, json.PositiveInt("word_embed_proj_dim", c->hidden_size));
  if (projected != c->hidden_size) c->embedding_dim = projected;
  c->position.kind = kernels::PositionKind::kLearned;
  c->position.absolute.offset = 2;
  c->position.absolute.table_rows = c->max_position_embeddings + 2;
  c->max_model_len = c->max_position_embeddings;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CausalLm>> LoadOpt(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  const std::string d = "model.decoder.";
  const int64_t h = c.hidden_size;
  const int64_t e = c.embedding_dim > 0 ? c.embedding_dim : h;
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load(d + "embed_tokens.weight", c.vocab_size, e));
  ASSIGN_OR_RETURN(w.position_table,
                   loader.Load(d + "embed_positions.weight", c.position.absolute.table_rows, h));
  if (e != h) {
    ASSIGN_OR_RETURN(w.project_in, loader.Load(d + "project_in.weight", h, e));
    ASSIGN_OR_RETURN(w.project_out, loader.Load(d + "project_out.weight", e, h));
  }
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat(d, "layers.", i, ".");
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
  RETURN_IF_ERROR(LoadHead(c, loader, d + "final_layer_norm", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
