#include "model/position_config.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "kernels/rope_table.h"

namespace ropewire::model {
namespace {

using kernels::PositionEncoding;
using kernels::RopeSpec;

constexpr double kPi = 3.14159265358979323846;

// Inputs every scaling type reads, already normalised (posenc.md §1.2).
struct RopeInputs {
  std::string rope_type;
  double theta = 10000.0;
  int rotary_dim = 0;
  int64_t max_positions = 0;       // max_position_embeddings
  int64_t original_positions = 0;  // original_max_position_embeddings (llama3/yarn/longrope)
};

// The rope dict of the config: 5.x `rope_parameters`, else 4.x `rope_scaling`, else empty.
nlohmann::json RopeDict(const nlohmann::json& j) {
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) return *it;
  }
  return nlohmann::json::object();
}

// A number that the first reader holding `key` gives, else `fallback`.
absl::StatusOr<double> FirstDouble(const std::vector<std::pair<const JsonReader*, std::string>>& at,
                                   double fallback) {
  for (const auto& [reader, key] : at) {
    if (!key.empty() && reader->Has(key)) return reader->Double(key);
  }
  return fallback;
}

absl::StatusOr<std::vector<float>> FactorList(const JsonReader& rope, const std::string& key,
                                              int expected) {
  if (!rope.Has(key)) return rope.Error(key, "is missing");
  const auto& list = rope.object().at(key);
  if (!list.is_array() || static_cast<int>(list.size()) != expected) {
    return rope.Error(key,
                      absl::StrCat("must be a list of rotary_dim / 2 = ", expected, " numbers"));
  }
  std::vector<float> out;
  for (const auto& v : list) {
    if (!v.is_number() || !(v.get<double>() > 0))
      return rope.Error(key, "must hold positive numbers");
    out.push_back(static_cast<float>(v.get<double>()));
  }
  return out;
}

absl::StatusOr<double> ScalingFactor(const JsonReader& rope, const std::string& type) {
  ASSIGN_OR_RETURN(double factor, rope.Double("factor"));
  if (!(factor >= 1.0)) {
    return rope.Error("factor", absl::StrCat("must be >= 1 for ", type, " scaling, got ", factor));
  }
  return factor;
}

// YaRN (posenc.md §3.4), fp32 where the reference uses fp32 tensors.
absl::Status ApplyYarn(const JsonReader& rope, const RopeInputs& in, RopeSpec* spec,
                       int64_t* max_len) {
  double factor;
  if (rope.Has("factor")) {
    ASSIGN_OR_RETURN(factor, rope.Double("factor"));
  } else {
    factor = double(in.max_positions) / double(in.original_positions);
  }
  if (!(factor > 0)) return rope.Error("factor", "must be positive");
  auto mscale_of = [](double s, double m) { return s <= 1 ? 1.0 : 0.1 * m * std::log(s) + 1.0; };
  ASSIGN_OR_RETURN(double mscale, rope.Double("mscale", 0.0));
  ASSIGN_OR_RETURN(double mscale_all_dim, rope.Double("mscale_all_dim", 0.0));
  double attention = mscale != 0 && mscale_all_dim != 0
                         ? mscale_of(factor, mscale) / mscale_of(factor, mscale_all_dim)
                         : mscale_of(factor, 1.0);
  ASSIGN_OR_RETURN(attention, rope.Double("attention_factor", attention));  // given: verbatim
  ASSIGN_OR_RETURN(double beta_fast, rope.Double("beta_fast", 32.0));
  ASSIGN_OR_RETURN(double beta_slow, rope.Double("beta_slow", 1.0));
  if (beta_fast == 0) beta_fast = 32.0;  // the reference treats a falsy value as unset
  if (beta_slow == 0) beta_slow = 1.0;
  ASSIGN_OR_RETURN(bool truncate, rope.Bool("truncate", true));

  const double r = in.rotary_dim;
  auto correction_dim = [&](double rotations) {
    return r * std::log(double(in.original_positions) / (rotations * 2 * kPi)) /
           (2 * std::log(in.theta));
  };
  double low = correction_dim(beta_fast);
  double high = correction_dim(beta_slow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, r - 1);
  if (low == high) high += 0.001;  // the reference's guard against a zero-width ramp

  const float f = static_cast<float>(factor);
  const float ramp_low = static_cast<float>(low);
  const float ramp_width = static_cast<float>(high - low);
  for (size_t k = 0; k < spec->inv_freq.size(); ++k) {
    const float exponent = static_cast<float>(2 * k) / static_cast<float>(in.rotary_dim);
    const float base_freq = std::pow(static_cast<float>(in.theta), exponent);
    const float extrapolation = 1.0f / base_freq;
    const float interpolation = 1.0f / (f * base_freq);
    const float ramp = std::clamp((static_cast<float>(k) - ramp_low) / ramp_width, 0.0f, 1.0f);
    const float keep = 1.0f - ramp;
    spec->inv_freq[k] = interpolation * (1.0f - keep) + extrapolation * keep;
  }
  spec->attention_scaling = static_cast<float>(attention);
  *max_len = std::max<int64_t>(in.max_positions, std::llround(in.original_positions * factor));
  return absl::OkStatus();
}

// Llama 3.1 (posenc.md §3.6) in the reference's fp32 order.
absl::Status ApplyLlama3(const JsonReader& rope, const RopeInputs& in, RopeSpec* spec) {
  ASSIGN_OR_RETURN(double factor, ScalingFactor(rope, "llama3"));
  ASSIGN_OR_RETURN(double low_ff, rope.Double("low_freq_factor"));
  ASSIGN_OR_RETURN(double high_ff, rope.Double("high_freq_factor"));
  if (!(high_ff > low_ff && low_ff > 0)) {
    return rope.Error("high_freq_factor", "must exceed low_freq_factor (> 0)");
  }
  const double original = static_cast<double>(in.original_positions);
  const float low_wavelen = static_cast<float>(original / low_ff);
  const float high_wavelen = static_cast<float>(original / high_ff);
  const float f = static_cast<float>(factor);
  for (float& inv : spec->inv_freq) {
    const float wavelen = static_cast<float>(2 * kPi) / inv;
    const float scaled = wavelen > low_wavelen ? inv / f : inv;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (medium) {
      const float smooth = (static_cast<float>(original) / wavelen - static_cast<float>(low_ff)) /
                           static_cast<float>(high_ff - low_ff);
      inv = (1.0f - smooth) * scaled / f + smooth * scaled;
    } else {
      inv = scaled;
    }
  }
  return absl::OkStatus();
}

// LongRoPE (posenc.md §3.5): short factors up to the original length, long factors beyond.
absl::Status ApplyLongRope(const JsonReader& rope, const RopeInputs& in, RopeSpec* spec) {
  const int half = in.rotary_dim / 2;
  ASSIGN_OR_RETURN(std::vector<float> short_factor, FactorList(rope, "short_factor", half));
  ASSIGN_OR_RETURN(std::vector<float> long_factor, FactorList(rope, "long_factor", half));
  ASSIGN_OR_RETURN(double factor,
                   rope.Double("factor", double(in.max_positions) / double(in.original_positions)));
  double attention =
      factor <= 1.0 ? 1.0
                    : std::sqrt(1.0 + std::log(factor) / std::log(double(in.original_positions)));
  ASSIGN_OR_RETURN(attention, rope.Double("attention_factor", attention));
  auto table = [&](const std::vector<float>& ext) {
    std::vector<float> inv(half);
    for (int k = 0; k < half; ++k) {
      const float exponent = static_cast<float>(2 * k) / static_cast<float>(in.rotary_dim);
      inv[k] = 1.0f / (ext[k] * std::pow(static_cast<float>(in.theta), exponent));
    }
    return inv;
  };
  spec->inv_freq = table(short_factor);
  spec->long_inv_freq = table(long_factor);
  spec->long_threshold = in.original_positions;
  spec->length_rule = kernels::RopeLengthRule::kLongRope;
  spec->attention_scaling = static_cast<float>(attention);
  return absl::OkStatus();
}

// Applies the scaling type to the default table and gives the longest servable length.
absl::Status ApplyScaling(const JsonReader& rope, const RopeInputs& in, RopeSpec* spec,
                          int64_t* max_len) {
  const std::string& type = in.rope_type;
  *max_len = in.max_positions;
  if (type == "default") return absl::OkStatus();
  if (type == "linear" || type == "dynamic") {
    ASSIGN_OR_RETURN(double factor, ScalingFactor(rope, type));
    *max_len = std::llround(double(in.max_positions) * factor);
    if (type == "linear") {
      for (float& v : spec->inv_freq) v /= static_cast<float>(factor);
      return absl::OkStatus();
    }
    if (in.rotary_dim <= 2) return rope.Error("factor", "dynamic scaling needs rotary_dim > 2");
    spec->length_rule = kernels::RopeLengthRule::kDynamicNtk;
    spec->dynamic_factor = factor;
    spec->dynamic_base_length = in.max_positions;
    return absl::OkStatus();
  }
  if (type == "yarn") return ApplyYarn(rope, in, spec, max_len);
  if (type == "llama3") return ApplyLlama3(rope, in, spec);
  if (type == "longrope") return ApplyLongRope(rope, in, spec);
  return absl::UnimplementedError(absl::StrCat(
      rope.source(), ": rope_type \"", type,
      "\" is not supported (supported: default, linear, dynamic, yarn, llama3, longrope)"));
}

// original_max_position_embeddings: the top-level key wins (Phi-3), then the rope dict's, then
// max_position_embeddings.
absl::StatusOr<int64_t> OriginalPositions(const JsonReader& json, const JsonReader& rope,
                                          int64_t max_positions) {
  const std::string key = "original_max_position_embeddings";
  if (json.Has(key)) return json.PositiveInt(key);
  return rope.PositiveInt(key, max_positions);
}

absl::StatusOr<int> RotaryDim(const JsonReader& json, const JsonReader& rope,
                              const RopeRules& rules, int head_dim) {
  int rotary_dim;
  std::string key = rules.rotary_dim_key;
  if (!key.empty()) {
    ASSIGN_OR_RETURN(int64_t dim, json.PositiveInt(key, head_dim));
    rotary_dim = static_cast<int>(dim);
  } else {
    key = "partial_rotary_factor";
    ASSIGN_OR_RETURN(double partial,
                     FirstDouble({{&rope, key}, {&json, key}, {&json, rules.partial_alias}},
                                 rules.default_partial));
    if (!(partial > 0 && partial <= 1)) return json.Error(key, "must be in (0, 1]");
    if (rules.whole_head_only && partial != 1.0) {
      return json.Error(key, "must be 1: this model type rotates the whole head");
    }
    rotary_dim = static_cast<int>(head_dim * partial);  // truncation, as the reference's int()
  }
  if (rotary_dim < 2 || rotary_dim % 2 != 0 || rotary_dim > head_dim) {
    return json.Error(key, absl::StrCat("gives an unusable rotary dimension ", rotary_dim,
                                        " for head_dim ", head_dim));
  }
  return rotary_dim;
}

// One rope dict (global, or one layer type's) → encoding and max length.
absl::StatusOr<PositionEncoding> ResolveRopeDict(const JsonReader& json, const JsonReader& rope,
                                                 const RopeRules& rules, const ModelConfig& c,
                                                 int64_t* max_len) {
  RopeInputs in;
  ASSIGN_OR_RETURN(in.rope_type, rope.String("rope_type", rope.Has("type") ? "" : "default"));
  if (in.rope_type.empty()) {
    ASSIGN_OR_RETURN(in.rope_type, rope.String("type"));
  }
  if (rules.legacy_longrope_names && (in.rope_type == "su" || in.rope_type == "yarn")) {
    in.rope_type = "longrope";
  }
  if (rules.fixed_unscaled && in.rope_type != "default") {
    return rope.Error("rope_type", "must be \"default\": this model type has no RoPE scaling");
  }
  ASSIGN_OR_RETURN(
      in.theta,
      FirstDouble({{&rope, "rope_theta"}, {&json, "rope_theta"}, {&json, rules.theta_alias}},
                  10000.0));
  if (rules.fixed_unscaled) in.theta = 10000.0;
  if (!(in.theta > 1)) return json.Error("rope_theta", "must be greater than 1");
  ASSIGN_OR_RETURN(in.rotary_dim, RotaryDim(json, rope, rules, c.head_dim));
  in.max_positions = c.max_position_embeddings;
  ASSIGN_OR_RETURN(in.original_positions, OriginalPositions(json, rope, in.max_positions));

  PositionEncoding pe;
  pe.kind = kernels::PositionKind::kRope;
  pe.rope_type = in.rope_type;
  pe.rope.rotary_dim = in.rotary_dim;
  pe.rope.layout = rules.layout;
  pe.rope.theta = in.theta;
  pe.rope.inv_freq = kernels::DefaultInverseFrequencies(in.theta, in.rotary_dim);
  RETURN_IF_ERROR(ApplyScaling(rope, in, &pe.rope, max_len));
  return pe;
}

// transformers 5.x allows one rope dict per layer type when every key names a layer type.
bool IsNestedByLayerType(const nlohmann::json& rope, const nlohmann::json& config) {
  auto types = config.find("layer_types");
  if (rope.empty() || types == config.end() || !types->is_array()) return false;
  std::set<std::string> names;
  for (const auto& t : *types) {
    if (t.is_string()) names.insert(t.get<std::string>());
  }
  for (const auto& [key, value] : rope.items()) {
    if (!names.count(key)) return false;
  }
  return true;
}

bool SameEncoding(const PositionEncoding& a, const PositionEncoding& b) {
  return a.rope_type == b.rope_type && a.rope.rotary_dim == b.rope.rotary_dim &&
         a.rope.inv_freq == b.rope.inv_freq && a.rope.long_inv_freq == b.rope.long_inv_freq &&
         a.rope.attention_scaling == b.rope.attention_scaling &&
         a.rope.length_rule == b.rope.length_rule && a.rope.theta == b.rope.theta &&
         a.rope.dynamic_factor == b.rope.dynamic_factor;
}

absl::Status ResolveNested(const JsonReader& json, const nlohmann::json& rope_json,
                           const RopeRules& rules, ModelConfig* c) {
  const auto& types = json.object().at("layer_types");
  if (static_cast<int>(types.size()) != c->num_layers) {
    return json.Error("layer_types", "must have one entry per layer");
  }
  std::map<std::string, PositionEncoding> by_type;
  int64_t max_len = kUnboundedModelLength;
  for (const auto& [type, dict] : rope_json.items()) {
    if (!dict.is_object()) {
      return json.Error("rope_parameters", absl::StrCat("entry \"", type, "\" must be an object"));
    }
    const JsonReader rope(dict, absl::StrCat(json.source(), " (rope parameters of ", type, ")"));
    int64_t type_len = 0;
    ASSIGN_OR_RETURN(by_type[type], ResolveRopeDict(json, rope, rules, *c, &type_len));
    max_len = std::min(max_len, type_len);
  }
  c->max_model_len = max_len;
  c->position_by_layer.clear();
  for (const auto& t : types) {
    auto it = by_type.find(t.get<std::string>());
    if (it == by_type.end()) {
      return json.Error("rope_parameters", absl::StrCat("has no entry for layer type ", t.dump()));
    }
    c->position_by_layer.push_back(it->second);
  }
  c->position = c->position_by_layer.front();
  const bool uniform = std::all_of(c->position_by_layer.begin(), c->position_by_layer.end(),
                                   [&](const auto& p) { return SameEncoding(p, c->position); });
  if (uniform) c->position_by_layer.clear();
  return absl::OkStatus();
}

}  // namespace

absl::Status ResolveRopeEncoding(const JsonReader& json, const RopeRules& rules,
                                 ModelConfig* config) {
  const nlohmann::json rope_json = RopeDict(json.object());
  if (!rope_json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(json.source(), ": rope_parameters / rope_scaling must be an object"));
  }
  if (IsNestedByLayerType(rope_json, json.object())) {
    return ResolveNested(json, rope_json, rules, config);
  }
  const JsonReader rope(rope_json, json.source() + " (rope parameters)");
  int64_t max_len = 0;
  ASSIGN_OR_RETURN(config->position, ResolveRopeDict(json, rope, rules, *config, &max_len));
  config->position_by_layer.clear();
  config->max_model_len = max_len;
  return absl::OkStatus();
}

void UseAlibi(std::vector<float> slopes, ModelConfig* config) {
  config->position = kernels::PositionEncoding();
  config->position.kind = kernels::PositionKind::kAlibi;
  config->position.alibi.slopes = std::move(slopes);
  config->position_by_layer.clear();
  config->max_model_len = kUnboundedModelLength;
}

}  // namespace ropewire::model
