// config.json → ModelConfig: the typed facts of a Hugging Face model directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/position_encoding.h"

namespace ropewire::model {

enum class NormKind { kRmsNorm, kLayerNorm };
enum class Activation { kSilu, kGelu, kGeluTanh, kRelu };

struct ModelConfig {
  std::string model_type;    // config.json "model_type", e.g. "llama"
  std::string architecture;  // first of "architectures", e.g. "LlamaForCausalLM"
  std::string source;        // path of the config.json it came from, for messages

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // GQA/MQA when smaller than num_heads
  int head_dim = 0;      // explicit "head_dim" or hidden_size / num_heads
  int64_t max_position_embeddings = 0;

  NormKind norm = NormKind::kRmsNorm;
  float norm_eps = 1e-6f;
  Activation activation = Activation::kSilu;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // biases on the q, k and v projections
  bool o_bias = false;       // bias on the attention output projection
  bool mlp_bias = false;     // biases on the MLP projections
  // Per layer: attend only this many most recent positions (0 = full causal attention).
  std::vector<int> sliding_window;

  kernels::PositionEncoding position;

  std::vector<int32_t> bos_token_ids;
  std::vector<int32_t> eos_token_ids;
  std::string torch_dtype;  // dtype the checkpoint was saved in ("float32", "bfloat16", ...)
};

// Reads and validates `dir`/config.json. Errors name the file and the offending key.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& dir);

// Same, from JSON text; `source` names it in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& json_text,
                                             const std::string& source);

// The model types this build can run.
std::vector<std::string> SupportedModelTypes();

}  // namespace ropewire::model
