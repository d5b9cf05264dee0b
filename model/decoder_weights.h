// The weights of the decoder-only transformer every family maps its checkpoint onto, in one
// backend-neutral layout: fused projections stacked the way the forward pass multiplies them,
// on the host, each matrix in its storage format (model/weight_formats.h). The CPU backend
// computes from them directly; the CUDA backend uploads them.
//
// The architecture (norm kind, residual layout, gated MLP, ...) is described by ModelConfig:
// embeddings (plus an absolute position table when the encoding is learned or sinusoidal),
// layers of norm → attention with the model's positional encoding → MLP, a final norm and the
// LM head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace ropewire::model {

// A norm's parameters; bias empty for RMSNorm or bias-free LayerNorm.
struct NormWeights {
  std::vector<float> weight;
  std::vector<float> bias;
};

struct DecoderLayerWeights {
  NormWeights attn_norm;
  NormWeights mlp_norm;         // unused for ResidualLayout::kParallelSharedNorm
  Weight qkv;                   // rows [q: H*d; k: KV*d; v: KV*d]
  std::vector<float> qkv_bias;  // empty when none
  Weight o_proj;                // [hidden, H*d]
  std::vector<float> o_bias;
  Weight up;  // [2I, hidden] as [gate; up] when gated, else [I, hidden]
  std::vector<float> up_bias;
  Weight down;  // [hidden, I]
  std::vector<float> down_bias;
};

struct DecoderWeights {
  Weight embed_tokens;     // [vocab, embedding width]
  NormWeights embed_norm;  // config.embedding_norm (BLOOM)
  Weight project_in;       // OPT: [hidden, embedding width] when the widths differ
  Weight project_out;      // OPT: [embedding width, hidden]
  Weight position_table;   // learned or sinusoidal [rows, hidden]
  std::vector<DecoderLayerWeights> layers;
  NormWeights final_norm;
  Weight lm_head;  // empty when tied to embed_tokens
  std::vector<float> lm_head_bias;
};

// A model as read from its files: what to compute and with which weights.
struct ModelCheckpoint {
  ModelConfig config;
  DecoderWeights weights;
  std::string weight_formats;  // how the matrices are stored, for logs and model info
};

// Checks that the weights are what the config's choices need (one entry per layer, a gated MLP
// with silu, ...), so a backend can rely on them.
absl::Status ValidateDecoder(const ModelConfig& config, const DecoderWeights& weights);

}  // namespace ropewire::model
