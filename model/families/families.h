// Every model family: how it reads its config.json into ModelConfig and how its checkpoints lay
// out the decoder's tensors (one .cc file per family; one loader reads them all,
// model/families/checkpoint_loader.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"
#include "model/config_json.h"
#include "model/families/layout.h"
#include "model/json_reader.h"

namespace ropewire::model {

#define ROPEWIRE_MODEL_FAMILY(Name)                                              \
  absl::Status Parse##Name##Config(const JsonReader& json, ModelConfig* config); \
  CheckpointLayout Name##Layout(const ModelConfig& config);

ROPEWIRE_MODEL_FAMILY(Llama)    // llama.cc (also mistral and qwen2: Parse{Mistral,Qwen2}Config)
ROPEWIRE_MODEL_FAMILY(Phi3)     // phi3.cc
ROPEWIRE_MODEL_FAMILY(GptNeox)  // gpt_neox.cc
ROPEWIRE_MODEL_FAMILY(Gptj)     // gptj.cc
ROPEWIRE_MODEL_FAMILY(Phi)      // phi.cc
ROPEWIRE_MODEL_FAMILY(Bloom)    // bloom.cc
ROPEWIRE_MODEL_FAMILY(Mpt)      // mpt.cc
ROPEWIRE_MODEL_FAMILY(Falcon)   // falcon.cc
ROPEWIRE_MODEL_FAMILY(Gpt2)     // gpt2.cc
ROPEWIRE_MODEL_FAMILY(Opt)      // opt.cc
ROPEWIRE_MODEL_FAMILY(Xglm)     // xglm.cc

#undef ROPEWIRE_MODEL_FAMILY

absl::Status ParseMistralConfig(const JsonReader& json, ModelConfig* config);
absl::Status ParseQwen2Config(const JsonReader& json, ModelConfig* config);

struct RopeRules;
// Llama-style dimensions (llama.cc), shared with phi3: sizes, RMSNorm, silu, RoPE by `rope`.
absl::Status ParseLlamaDimensions(const JsonReader& json, const RopeRules& rope, ModelConfig* c);
// Per-layer sliding windows from layer_types or the 4.x keys (llama.cc).
absl::Status ParseSlidingWindows(const JsonReader& json, bool enabled, int64_t first_window_layer,
                                 ModelConfig* c);
// The Llama layout; `fused`: Phi-3's qkv_proj and gate_up_proj (llama.cc).
CheckpointLayout LlamaStyleLayout(bool fused);

// Attention/embedding shape keys shared by the LayerNorm families: fills vocab_size,
// hidden_size, num_layers, num_heads (= num_kv_heads) and head_dim from the given key names
// (dimensions.cc).
absl::Status ParseBasicDimensions(const JsonReader& json, const std::vector<std::string>& hidden,
                                  const std::vector<std::string>& layers,
                                  const std::vector<std::string>& heads, ModelConfig* c);
// The first of `keys` present in the JSON (an alias list), or the last one when none is.
std::string FirstPresentKey(const JsonReader& json, const std::vector<std::string>& keys);

}  // namespace ropewire::model
