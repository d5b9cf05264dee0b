#include "model/model_info.h"

namespace ropewire::model {

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
  nlohmann::json pos;
  switch (c.position.kind) {
    case kernels::PositionKind::kNone:
      pos["kind"] = "none";
      break;
    case kernels::PositionKind::kRope:
      pos["kind"] = "rope";
      pos["rope_type"] = c.position.rope_type;
      pos["rotary_dim"] = c.position.rope.rotary_dim;
      pos["layout"] = c.position.rope.layout == kernels::RopeLayout::kNeox ? "neox" : "interleaved";
      pos["attention_scaling"] = c.position.rope.attention_scaling;
      pos["inv_freq"] = c.position.rope.inv_freq;
      break;
  }
  j["position_encoding"] = pos;
  return j;
}

}  // namespace ropewire::model
