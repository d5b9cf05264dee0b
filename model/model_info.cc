#include "model/model_info.h"

#include "model/config.h"

namespace ropewire::model {
namespace {

const char* LengthRuleName(kernels::RopeLengthRule rule) {
  switch (rule) {
    case kernels::RopeLengthRule::kStatic: return "static";
    case kernels::RopeLengthRule::kDynamicNtk: return "dynamic_ntk";
    case kernels::RopeLengthRule::kLongRope: return "longrope";
  }
  return "unknown";
}

nlohmann::json RopeJson(const kernels::PositionEncoding& p) {
  const kernels::RopeSpec& r = p.rope;
  nlohmann::json pos;
  pos["rope_type"] = p.rope_type;
  pos["rotary_dim"] = r.rotary_dim;
  pos["layout"] = r.layout == kernels::RopeLayout::kNeox ? "neox" : "interleaved";
  pos["rope_theta"] = r.theta;
  pos["attention_scaling"] = r.attention_scaling;
  pos["inv_freq"] = r.inv_freq;
  pos["length_rule"] = LengthRuleName(r.length_rule);
  if (r.length_rule == kernels::RopeLengthRule::kDynamicNtk) {
    pos["dynamic_factor"] = r.dynamic_factor;
    pos["dynamic_base_length"] = r.dynamic_base_length;
  }
  if (r.length_rule == kernels::RopeLengthRule::kLongRope) {
    pos["long_inv_freq"] = r.long_inv_freq;
    pos["long_threshold"] = r.long_threshold;
  }
  return pos;
}

nlohmann::json PositionEncodingJson(const kernels::PositionEncoding& p) {
  nlohmann::json pos;
  switch (p.kind) {
    case kernels::PositionKind::kRope: pos = RopeJson(p); break;
    case kernels::PositionKind::kAlibi:
      pos["slopes"] = p.alibi.slopes;
      pos["form"] = p.alibi.bf16_key_position_form ? "bf16(slope * key_position) * bias_scale"
                                                   : "slope * (key_position - query_position)";
      pos["bias_scale"] = p.alibi.bias_scale;
      break;
    case kernels::PositionKind::kRelativeBias:
      pos["num_buckets"] = p.relative_bias.num_buckets;
      pos["max_distance"] = p.relative_bias.max_distance;
      pos["bidirectional"] = p.relative_bias.bidirectional;
      break;
    case kernels::PositionKind::kLearned:
    case kernels::PositionKind::kSinusoidal:
      pos["table_rows"] = p.absolute.table_rows;
      pos["offset"] = p.absolute.offset;
      if (p.absolute.padding_idx >= 0) pos["padding_idx"] = p.absolute.padding_idx;
      break;
    case kernels::PositionKind::kNone: break;
  }
  const std::string name = PositionEncodingName(p);
  pos["kind"] = name.substr(0, name.find('/'));  // "rope", "alibi", "learned", ...
  pos["relative"] = p.IsRelative();
  return pos;
}

}  // namespace

nlohmann::json ModelInfoJson(const ModelConfig& c) {
  nlohmann::json j;
  j["model_type"] = c.model_type;
  j["architecture"] = c.architecture;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_layers"] = c.num_layers;
  j["num_heads"] = c.num_heads;
  j["num_kv_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["sliding_window"] = c.sliding_window;
  j["max_model_len"] = c.max_model_len;
  nlohmann::json pos = PositionEncodingJson(c.position);
  if (!c.position_by_layer.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& layer : c.position_by_layer) layers.push_back(PositionEncodingJson(layer));
    pos["by_layer"] = layers;
  }
  j["position_encoding"] = pos;
  return j;
}

}  // namespace ropewire::model
