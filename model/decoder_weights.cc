#include "model/decoder_weights.h"

#include "absl/strings/str_cat.h"

namespace ropewire::model {

absl::Status ValidateDecoder(const ModelConfig& config, const DecoderWeights& weights) {
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(config.source, ": ", what));
  };
  if (static_cast<int>(weights.layers.size()) != config.num_layers || config.num_layers == 0) {
    return error("the decoder needs one set of weights per layer");
  }
  if (config.gated_mlp && config.activation != Activation::kSilu) {
    return error("a gated MLP needs silu");
  }
  const bool two_norms = config.residual != ResidualLayout::kParallelSharedNorm;
  for (const DecoderLayerWeights& layer : weights.layers) {
    if (layer.attn_norm.weight.empty() || (two_norms && layer.mlp_norm.weight.empty())) {
      return error("a layer lacks the norms its residual layout needs");
    }
  }
  if (config.final_norm && weights.final_norm.weight.empty()) return error("no final norm");
  const bool absolute = config.position.kind == kernels::PositionKind::kLearned ||
                        config.position.kind == kernels::PositionKind::kSinusoidal;
  if (absolute && weights.position_table.empty()) return error("no position table");
  return absl::OkStatus();
}

}  // namespace ropewire::model
