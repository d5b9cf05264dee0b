// Falcon, all three layouts: 7B-style multi-query with one shared LayerNorm and parallel
// attention; 40B/180B-style new_decoder_architecture (GQA, qkv grouped per kv head, ln_attn +
// ln_mlp); and the RW-style sequential block with per-head qkv. RoPE (NeoX, full head) or, with
// `alibi: true`, ALiBi as the reference applies it: bf16 slopes, bf16(slope * key position),
// divided by sqrt(head_dim).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {
namespace {

struct FalconArchitecture {
  bool new_architecture = false;
  bool multi_query = true;
  bool parallel_attn = true;
  int num_ln_in_parallel_attn = 2;
};

absl::StatusOr<FalconArchitecture> ParseArchitecture(const JsonReader& json) {
  FalconArchitecture f;
  ASSIGN_OR_RETURN(f.new_architecture, json.Bool("new_decoder_architecture", false));
  ASSIGN_OR_RETURN(f.multi_query, json.Bool("multi_query", true));
  ASSIGN_OR_RETURN(f.parallel_attn, json.Bool("parallel_attn", true));
  ASSIGN_OR_RETURN(int64_t lns, json.Int("num_ln_in_parallel_attn", f.new_architecture ? 2 : 1));
  f.num_ln_in_parallel_attn = static_cast<int>(lns);
  if (f.new_architecture && !f.parallel_attn) {
    return json.Error("parallel_attn", "must be true with new_decoder_architecture");
  }
  return f;
}

absl::Status ParseFalconPosition(const JsonReader& json, ModelConfig* c) {
  ASSIGN_OR_RETURN(bool alibi, json.Bool("alibi", false));
  if (!alibi) return ResolveRopeEncoding(json, RopeRules{}, c);
  std::vector<float> slopes = kernels::AlibiSlopes(c->num_heads);
  for (float& s : slopes) s = kernels::RoundToBfloat16(s);
  UseAlibi(std::move(slopes), c);
  c->position.alibi.bf16_key_position_form = true;
  c->position.alibi.bias_scale = 1.0f / std::sqrt(static_cast<float>(c->head_dim));
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseFalconConfig(const JsonReader& json, ModelConfig* c) {
  RETURN_IF_ERROR(ParseBasicDimensions(json, {"hidden_size", "n_embed"},
                                       {"num_hidden_layers", "n_layer"},
                                       {"num_attention_heads", "n_head"}, c));
  ASSIGN_OR_RETURN(FalconArchitecture layout, ParseArchitecture(json));
  if (layout.new_architecture) {
    ASSIGN_OR_RETURN(int64_t kv_heads, json.PositiveInt("num_kv_heads", c->num_heads));
    if (c->num_heads % kv_heads != 0) return json.Error("num_kv_heads", "must divide the heads");
    c->num_kv_heads = static_cast<int>(kv_heads);
  } else if (layout.multi_query) {
    c->num_kv_heads = 1;
  }
  ASSIGN_OR_RETURN(c->intermediate_size, json.PositiveInt("ffn_hidden_size", 4 * c->hidden_size));
  ASSIGN_OR_RETURN(c->max_position_embeddings, json.PositiveInt("max_position_embeddings", 2048));
  ASSIGN_OR_RETURN(double eps, json.Double("layer_norm_epsilon", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  c->norm = NormKind::kLayerNorm;
  c->norm_bias = true;
  c->gated_mlp = false;
  ASSIGN_OR_RETURN(c->activation, ParseActivation(json, "activation", "gelu"));
  if (!layout.parallel_attn) {
    c->residual = ResidualLayout::kSequential;
  } else if (layout.new_architecture && layout.num_ln_in_parallel_attn == 2) {
    c->residual = ResidualLayout::kParallelTwoNorms;
  } else {
    c->residual = ResidualLayout::kParallelSharedNorm;
  }
  ASSIGN_OR_RETURN(bool bias, json.Bool("bias", false));
  c->qkv_bias = c->o_bias = c->mlp_bias = bias;
  ASSIGN_OR_RETURN(c->tie_word_embeddings, json.Bool("tie_word_embeddings", true));
  return ParseFalconPosition(json, c);
}

CheckpointLayout FalconLayout(const ModelConfig& c) {
  CheckpointLayout l;
  l.embed_tokens = "transformer.word_embeddings";
  l.layer_prefix = "transformer.h.$0.";
  if (c.residual == ResidualLayout::kParallelTwoNorms) {
    l.layer.attn_norm = "ln_attn";
    l.layer.mlp_norm = "ln_mlp";
  } else {
    l.layer.attn_norm = "input_layernorm";
    if (c.residual == ResidualLayout::kSequential) l.layer.mlp_norm = "post_attention_layernorm";
  }
  l.layer.qkv = "self_attention.query_key_value";
  // Multi-query checkpoints stack [q; k; v]; grouped ones interleave per kv head; multi-head
  // ones per head.
  l.layer.qkv_layout = FusedQkvLayout::kPerHead;
  if (c.num_kv_heads == 1 && c.num_heads > 1) l.layer.qkv_layout = FusedQkvLayout::kStacked;
  if (c.num_kv_heads != c.num_heads && c.num_kv_heads != 1) {
    l.layer.qkv_layout = FusedQkvLayout::kGrouped;
  }
  l.layer.o = "self_attention.dense";
  l.layer.up = "mlp.dense_h_to_4h";
  l.layer.down = "mlp.dense_4h_to_h";
  l.final_norm = "transformer.ln_f";
  l.lm_head = "lm_head";
  return l;
}

}  // namespace ropewire::model
