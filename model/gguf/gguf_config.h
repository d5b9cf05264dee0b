// A GGUF file's metadata → the same ModelConfig (and positional-encoding descriptor) a
// config.json of the same model gives, and the names its tensors carry.
//
// The metadata is first rewritten as the Hugging Face config.json it stands for (the mapping
// transformers applies when it loads a GGUF file), then parsed by the family's own config
// parser, so every check and every RoPE scaling rule is the one config.json models get.
// Keys are read strictly: a missing required key, a value of the wrong type, a parameter
// ropewire cannot honour (per-layer head counts, experts, llama.cpp-only YaRN knobs) and an
// architecture it does not serve are errors naming the key.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gguf/gguf_file.h"
#include "model/config.h"
#include "model/families/layout.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {

struct GgufModelDescription {
  ModelConfig config;
  // Tensor names, in the loader's terms (".weight" / ".bias" appended): token_embd,
  // blk.N.attn_q, ..., output_norm, output.
  CheckpointLayout layout;
  // llama.cpp's converter reorders the rows of Q and K of `llama` models for the interleaved
  // rotation (model/gguf/qk_permutation.h); Qwen2 files keep the Hugging Face order.
  bool qk_rows_interleaved = false;
};

// GGUF `general.architecture` values ropewire serves.
std::vector<std::string> SupportedGgufArchitectures();

// The config.json a file's metadata stands for (keys as transformers names them).
absl::StatusOr<nlohmann::json> GgufToHfConfigJson(const gguf::GgufFile& file);

// Config, layout and Q/K row order of a GGUF model. Llama-3.1-style RoPE factors (the
// rope_freqs.weight tensor) divide the inverse frequencies, as llama.cpp applies them.
absl::StatusOr<GgufModelDescription> DescribeGgufModel(const gguf::GgufFile& file);

}  // namespace ropewire::model
