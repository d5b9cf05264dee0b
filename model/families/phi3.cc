// Phi-3 (and Phi-3.5 / Phi-4-mini): the Llama block with fused qkv_proj ([q; k; v]) and
// gate_up_proj ([gate; up]); LongRoPE ("su" in older configs) or partial rotary.
#include "base/status_macros.h"
#include "model/families/families.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::Status ParsePhi3Config(const JsonReader& json, ModelConfig* c) {
  RopeRules rope;
  rope.legacy_longrope_names = true;  // Phi-3's "su" (and "yarn") configs are LongRoPE
  RETURN_IF_ERROR(ParseLlamaDimensions(json, rope, c));
  ASSIGN_OR_RETURN(double eps, json.Double("rms_norm_eps", 1e-5));
  c->norm_eps = static_cast<float>(eps);
  return ParseSlidingWindows(json, true, 0, c);
}

CheckpointLayout Phi3Layout(const ModelConfig&) { return LlamaStyleLayout(/*fused=*/true); }

}  // namespace ropewire::model
