#include "model/position_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace ropewire::model {
namespace {

// The rope dict of the config: 5.x `rope_parameters`, else 4.x `rope_scaling`, else empty.
nlohmann::json RopeDict(const nlohmann::json& j) {
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) return *it;
  }
  return nlohmann::json::object();
}

absl::Status ApplyScaling(const std::string& rope_type, const JsonReader& rope,
                          kernels::RopeSpec* spec) {
  if (rope_type == "default") return absl::OkStatus();
  if (rope_type == "linear") {
    ASSIGN_OR_RETURN(double factor, rope.Double("factor"));
    if (!(factor >= 1.0)) {
      return rope.Error("factor", absl::StrCat("must be >= 1 for linear scaling, got ", factor));
    }
    const float f = static_cast<float>(factor);
    for (float& v : spec->inv_freq) v /= f;
    return absl::OkStatus();
  }
  return absl::UnimplementedError(absl::StrCat(
      rope.source(), ": rope_type \"", rope_type,
      "\" is not supported by this build (supported: default, linear)"));
}

}  // namespace

std::vector<float> DefaultInverseFrequencies(double theta, int rotary_dim) {
  std::vector<float> inv_freq(rotary_dim / 2);
  const float base = static_cast<float>(theta);
  for (int k = 0; k < rotary_dim / 2; ++k) {
    const float exponent = static_cast<float>(2 * k) / static_cast<float>(rotary_dim);
    inv_freq[k] = 1.0f / std::pow(base, exponent);
  }
  return inv_freq;
}

absl::Status ResolvePositionEncoding(const JsonReader& json, ModelConfig* config) {
  const nlohmann::json rope_json = RopeDict(json.object());
  if (!rope_json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(json.source(), ": rope_parameters / rope_scaling must be an object"));
  }
  const JsonReader rope(rope_json, json.source() + " (rope parameters)");
  ASSIGN_OR_RETURN(std::string rope_type,
                   rope.String("rope_type", rope.Has("type") ? "" : "default"));
  if (rope_type.empty()) {
    ASSIGN_OR_RETURN(rope_type, rope.String("type"));
  }

  ASSIGN_OR_RETURN(double theta, rope.Double("rope_theta", -1.0));
  if (theta < 0) {
    ASSIGN_OR_RETURN(theta, json.Double("rope_theta", 10000.0));
  }
  if (!(theta > 0)) return json.Error("rope_theta", "must be positive");

  ASSIGN_OR_RETURN(double partial, rope.Double("partial_rotary_factor", -1.0));
  if (partial < 0) {
    ASSIGN_OR_RETURN(partial, json.Double("partial_rotary_factor", 1.0));
  }
  if (!(partial > 0 && partial <= 1)) {
    return json.Error("partial_rotary_factor", "must be in (0, 1]");
  }
  const int rotary_dim = static_cast<int>(config->head_dim * partial);
  if (rotary_dim < 2 || rotary_dim % 2 != 0) {
    return json.Error("partial_rotary_factor",
                      absl::StrCat("gives an unusable rotary dimension ", rotary_dim,
                                   " for head_dim ", config->head_dim));
  }

  kernels::PositionEncoding& pe = config->position;
  pe.kind = kernels::PositionKind::kRope;
  pe.rope_type = rope_type;
  pe.rope.rotary_dim = rotary_dim;
  pe.rope.layout = kernels::RopeLayout::kNeox;
  pe.rope.inv_freq = DefaultInverseFrequencies(theta, rotary_dim);
  pe.rope.attention_scaling = 1.0f;
  return ApplyScaling(rope_type, rope, &pe.rope);
}

}  // namespace ropewire::model
