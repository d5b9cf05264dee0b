// GPT-2: learned absolute positions (wpe, n_positions rows), Conv1D weights stored [in, out]
// (transposed at load), fused c_attn = [q; k; v], gelu_new, tied LM head.
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/families/decoder.h"
#include "model/families/families.h"

namespace ropewire::model {
namespace {

// A Conv1D layer: weight [in, out] stored transposed to the nn.Linear layout, and its bias.
absl::Status LoadConv1D(const WeightLoader& loader, const std::string& name, int64_t out,
                        int64_t in, Matrix* weight, std::vector<float>* bias) {
  ASSIGN_OR_RETURN(*weight, LoadTransposed(loader, name + ".weight", out, in));
  ASSIGN_OR_RETURN(*bias, loader.LoadVector(name + ".bias", out));
  return absl::OkStatus();
}

absl::StatusOr<DecoderLayerWeights> LoadGpt2Layer(const ModelConfig& c, const WeightLoader& loader,
                                                  const std::string& p) {
  const int64_t h = c.hidden_size;
  DecoderLayerWeights layer;
  ASSIGN_OR_RETURN(layer.attn_norm, LoadNorm(loader, p + "ln_1", h, true));
  ASSIGN_OR_RETURN(layer.mlp_norm, LoadNorm(loader, p + "ln_2", h, true));
  RETURN_IF_ERROR(LoadConv1D(loader, p + "attn.c_attn", 3 * h, h, &layer.qkv, &layer.qkv_bias));
  RETURN_IF_ERROR(LoadConv1D(loader, p + "attn.c_proj", h, h, &layer.o_proj, &layer.o_bias));
  RETURN_IF_ERROR(LoadConv1D(loader, p + "mlp.c_fc", c.intermediate_size, h, &layer.up, &layer.up_bias));
  RETURN_IF_ERROR(LoadConv1D(loader, p + "mlp.c_proj", h, c.intermediate_size, &layer.down,
                             &layer.down_bias));
  return layer;
}

}  // namespace

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

absl::StatusOr<std::unique_ptr<CausalLm>> LoadGpt2(const ModelConfig& c, const TensorStore& store) {
  const WeightLoader loader(store);
  // transformers saves "transformer.*"; the original checkpoints have no prefix.
  const std::string t = loader.Contains("transformer.wte.weight") ? "transformer." : "";
  DecoderWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens, loader.Load(t + "wte.weight", c.vocab_size, c.hidden_size));
  ASSIGN_OR_RETURN(w.position_table,
                   loader.Load(t + "wpe.weight", c.max_position_embeddings, c.hidden_size));
  for (int i = 0; i < c.num_layers; ++i) {
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, LoadGpt2Layer(c, loader, absl::StrCat(t, "h.", i, ".")));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(LoadHead(c, loader, t + "ln_f", "lm_head", &w));
  return MakeDecoder(c, std::move(w));
}

}  // namespace ropewire::model
