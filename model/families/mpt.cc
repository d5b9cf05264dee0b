// MPT: ALiBi with MPT's slope builder (bias_max 8, as the reference model hard-codes), fused
// Wqkv [q; k; v] with optional clip_qkv, bias-free LayerNorms and projections, exact GELU,
// tied LM head; positions limited to max_seq_len (the reference's bias table).
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {
namespace {

// attn_config keys ropewire must honour or refuse.
absl::Status ParseAttnConfig(const JsonReader& json, ModelConfig* c) {
  const nlohmann::json empty = nlohmann::json::object();
  auto it = json.object().find("attn_config");
  const nlohmann::json& attn_json = it != json.object().end() && it->is_object() ? *it : empty;
  const JsonReader attn(attn_json, json.source() + " (attn_config)");
  ASSIGN_OR_RETURN(bool alibi, attn.Bool("alibi", true));
  if (!alibi) return attn.Error("alibi", "false is not supported (MPT runs with ALiBi)");
  for (const char* key : {"qk_ln", "prefix_lm", "attn_uses_sequence_id"}) {
    ASSIGN_OR_RETURN(bool on, attn.Bool(key, false));
    if (on) return attn.Error(key, "true is not supported");
  }
  ASSIGN_OR_RETURN(double clip, attn.Double("clip_qkv", 0.0));
  c->clip_qkv = static_cast<float>(clip);
  ASSIGN_OR_RETURN(double scale, attn.Double("softmax_scale", 0.0));
  c->softmax_scale = static_cast<float>(scale);
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseMptConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"d_model"}, {"n_layers"}, {"n_heads"}, c));
  // The reference's MPT MLP is 4 × d_model wide whatever expansion_ratio says.
  c->intermediate_size = 4 * c->hidden_size;
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_seq_len", 2048));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = false;  // the reference drops every bias, whatever no_bias says
  c->gated_mlp = false;
  c->activation = Activation::kGelu;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  RETURN_IF_ERROR(ParseAttnConfig(json, c));
  UseAlibi(kernels::MptAlibiSlopes(c->num_heads, 8.0), c);
  c->max_model_len = c->max_position_embeddings;
  return absl::OkStatus();
}

CheckpointLayout MptLayout(const ModelConfig&) {
  CheckpointLayout l;
  l.embed_tokens = "transformer.wte";
  l.layer_prefix = "transformer.blocks.$0.";
  l.layer.attn_norm = "norm_1";
  l.layer.mlp_norm = "norm_2";
  l.layer.qkv = "attn.Wqkv";
  l.layer.o = "attn.out_proj";
  l.layer.up = "ffn.up_proj";
  l.layer.down = "ffn.down_proj";
  l.final_norm = "transformer.norm_f";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
