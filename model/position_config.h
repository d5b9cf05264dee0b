// Resolves a model's positional encoding from config.json into the kernels' descriptor
// (normalisation of transformers 4.x `rope_theta`/`rope_scaling` and 5.x `rope_parameters`,
// reference/posenc.md §1.2), and the longest sequence it can serve.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/position_encoding.h"
#include "model/config.h"
#include "model/json_reader.h"

namespace ropewire::model {

// Where a family keeps its RoPE parameters besides the standard keys, and its defaults.
struct RopeRules {
  std::string theta_alias;       // gpt_neox (4.x): "rotary_emb_base"
  std::string partial_alias;     // gpt_neox (4.x): "rotary_pct"
  double default_partial = 1.0;  // gpt_neox 0.25, phi 0.5
  // Llama, Mistral and Qwen2 rotate the whole head in the reference (it ignores a partial
  // factor for the default type and cannot run one for the others): refuse one.
  bool whole_head_only = false;
  // gptj: the rotary width is the absolute "rotary_dim" (null: head_dim), theta is fixed at
  // 10000 and no scaling exists; the reference's table ends at max_position_embeddings.
  std::string rotary_dim_key;
  bool fixed_unscaled = false;
  bool legacy_longrope_names = false;  // phi3: "su" and "yarn" mean "longrope"
  kernels::RopeLayout layout = kernels::RopeLayout::kNeox;
};

// Fills config->position (and position_by_layer for nested per-layer-type dicts) with RoPE and
// config->max_model_len from the config JSON. Needs head_dim, num_layers and
// max_position_embeddings already set. A scheme or parameter that cannot be honoured is an
// error, never a default.
absl::Status ResolveRopeEncoding(const JsonReader& json, const RopeRules& rules,
                                 ModelConfig* config);

// ALiBi with `slopes` (one per query head) in the relative form slope * (j - i); no position
// table bounds the length, so max_model_len is kUnboundedModelLength unless the family caps it.
void UseAlibi(std::vector<float> slopes, ModelConfig* config);

}  // namespace ropewire::model
