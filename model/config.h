// ModelConfig: the typed facts of a model every backend computes from, whatever file they came
// from (config.json: model/config_json.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/position_encoding.h"

namespace ropewire::model {

enum class NormKind { kRmsNorm, kLayerNorm };
// The MLP activation, named as the kernels of every backend name it.
using Activation = kernels::ActivationKind;

// How a decoder layer combines attention and MLP with the residual stream.
enum class ResidualLayout {
  kSequential,          // x += attn(norm1 x); x += mlp(norm2 x)
  kParallelSharedNorm,  // x += attn(norm x) + mlp(norm x)       (GPT-J, Phi, Falcon-7B)
  kParallelTwoNorms,    // x += attn(norm1 x) + mlp(norm2 x)     (GPT-NeoX, Falcon-40B)
  kPostNorm,            // x = norm1(x + attn x); x = norm2(x + mlp x)   (OPT-350m)
  // The residual stream continues from the normed values (BLOOM's
  // apply_residual_connection_post_layernorm): n = norm1 x; x = n + attn n; n = norm2 x;
  // x = n + mlp n.
  kNormedResidual,
};

// max_model_len of a model whose encoding addresses no table and whose config names no trained
// length (BLOOM's ALiBi): only ExecutorOptions::max_model_len and the KV cache bound it.
inline constexpr int64_t kUnboundedModelLength = int64_t(1) << 30;

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
  // Largest sequence length (position + 1) the model serves: from the config and its scaling
  // (see ResolveRopeEncoding); absolute encodings: the size of their position table.
  int64_t max_model_len = 0;

  NormKind norm = NormKind::kRmsNorm;
  float norm_eps = 1e-6f;
  Activation activation = Activation::kSilu;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // biases on the q, k and v projections
  bool o_bias = false;     // bias on the attention output projection
  bool mlp_bias = false;   // biases on the MLP projections
  bool gated_mlp = true;   // SwiGLU [gate; up] (Llama) rather than up → act → down
  bool norm_bias = false;  // LayerNorm with a bias
  ResidualLayout residual = ResidualLayout::kSequential;
  bool embedding_norm = false;   // LayerNorm right after the token embedding (BLOOM)
  float embedding_scale = 1.0f;  // token embeddings × this (XGLM: sqrt(d_model))
  // Token-embedding width when it differs from hidden_size (OPT's word_embed_proj_dim, with
  // project_in/project_out); 0: hidden_size.
  int64_t embedding_dim = 0;
  float softmax_scale = 0.0f;                    // 0: 1/sqrt(head_dim)
  bool scale_attn_by_inverse_layer_idx = false;  // GPT-2: scores also / (layer + 1)
  float clip_qkv = 0.0f;                         // MPT: clamp the fused qkv to ±clip_qkv (0: off)
  bool final_norm = true;                        // a norm before the LM head
  bool lm_head_bias = false;
  // Per layer: attend only this many most recent positions (0 = full causal attention).
  std::vector<int> sliding_window;

  kernels::PositionEncoding position;
  // Per layer, when transformers 5.x nested rope_parameters give layer types different RoPE;
  // empty when every layer uses `position`.
  std::vector<kernels::PositionEncoding> position_by_layer;

  std::vector<int32_t> bos_token_ids;
  std::vector<int32_t> eos_token_ids;
  std::string torch_dtype;  // dtype the checkpoint was saved in ("float32", "bfloat16", ...)
};

// A readable one-line name of the encoding for messages and --info ("rope/yarn", "alibi", ...).
std::string PositionEncodingName(const kernels::PositionEncoding& position);

}  // namespace ropewire::model
