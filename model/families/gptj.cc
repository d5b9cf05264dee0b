// GPT-J: interleaved (GPT-J layout) partial rotary over `rotary_dim` channels with theta fixed
// at 10000 and positions limited to n_positions; one shared ln_1 feeding attention and MLP in
// parallel; bias-free q/k/v/out projections; an LM head with a bias.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
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

absl::StatusOr<std::unique_ptr<CausalLm>> LoadGptj(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load("transformer.wte.weight", c.vocab_size, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = absl::StrCat("transformer.h.", i, ".");
    LayerNames names;
    names.attn_norm = p + "ln_1";
    names.q = p + "attn.q_proj";
    names.k = p + "attn.k_proj";
    names.v = p + "attn.v_proj";
    names.o = p + "attn.out_proj";
    names.up = p + "mlp.fc_in";
    names.down = p + "mlp.fc_out";
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadLayer(c, loader, names));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(LoadHead(c, loader, "transformer.ln_f", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
