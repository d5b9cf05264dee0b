// The decoder-only transformer every family file maps its checkpoint onto: embeddings (plus an
// absolute position table when the encoding is learned or sinusoidal), layers of norm →
// attention with the model's positional encoding inside the paged kernel → MLP in a sequential
// or parallel residual layout, a final norm and the LM head. Family files only parse their
// config.json and load their tensors (names, fused layouts, transposes) into DecoderWeights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/elementwise.h"
#include "model/causal_lm.h"
#include "model/weights.h"

namespace ropewire::model {

// A norm's parameters; bias empty for RMSNorm or bias-free LayerNorm.
struct NormWeights {
  std::vector<float> weight;
  std::vector<float> bias;
};

struct DecoderLayerWeights {
  NormWeights attn_norm;
  NormWeights mlp_norm;           // unused for ResidualLayout::kParallelSharedNorm
  Matrix qkv;                     // rows [q: H*d; k: KV*d; v: KV*d]
  std::vector<float> qkv_bias;    // empty when none
  Matrix o_proj;                  // [hidden, H*d]
  std::vector<float> o_bias;
  Matrix up;                      // [2I, hidden] as [gate; up] when gated, else [I, hidden]
  std::vector<float> up_bias;
  Matrix down;                    // [hidden, I]
  std::vector<float> down_bias;
};

struct DecoderWeights {
  Matrix embed_tokens;            // [vocab, embedding width]
  NormWeights embed_norm;         // config.embedding_norm (BLOOM)
  Matrix project_in;              // OPT: [hidden, embedding width] when the widths differ
  Matrix project_out;             // OPT: [embedding width, hidden]
  Matrix position_table;          // learned or sinusoidal [rows, hidden]
  std::vector<DecoderLayerWeights> layers;
  NormWeights final_norm;
  Matrix lm_head;                 // empty when tied to embed_tokens
  std::vector<float> lm_head_bias;
};

// Builds the model from parsed weights (checks that the config's choices have their tensors).
absl::StatusOr<std::unique_ptr<CausalLm>> MakeDecoder(const ModelConfig& config,
                                                      DecoderWeights weights);

// The weights of a model MakeDecoder built (every family's), for other backends to upload;
// null for any other CausalLm.
const DecoderWeights* DecoderWeightsOf(const CausalLm& model);

// The kernels' name for a config's activation.
kernels::cpu::ActivationKind KernelActivation(Activation activation);

// Loading helpers shared by the family files.

// A LayerNorm/RMSNorm of width n: `prefix`.weight and, when `with_bias`, `prefix`.bias.
absl::StatusOr<NormWeights> LoadNorm(const WeightLoader& loader, const std::string& prefix,
                                     int64_t n, bool with_bias);
// `name` stored [cols, rows] (GPT-2's Conv1D) as a [rows, cols] matrix.
absl::StatusOr<Matrix> LoadTransposed(const WeightLoader& loader, const std::string& name,
                                      int64_t rows, int64_t cols);
// Loads `name`.weight ([rows, cols]) and, when `with_bias`, `name`.bias into `bias`.
absl::StatusOr<Matrix> LoadLinear(const WeightLoader& loader, const std::string& name,
                                  int64_t rows, int64_t cols, bool with_bias,
                                  std::vector<float>* bias);

// Fused qkv layouts transformers checkpoints use, all turned into [q heads; k heads; v heads].
enum class FusedQkvLayout {
  kStacked,   // already [q; k; v] (MPT Wqkv, Phi-3 qkv_proj, Falcon multi-query, GPT-2)
  kPerHead,   // [head][q, k, v][d] (GPT-NeoX, BLOOM, Falcon multi-head)
  kGrouped,   // [kv group][q × H/KV, k, v][d] (Falcon new decoder architecture)
};
// Reorders the rows of a fused qkv weight (and its bias when non-empty) into [q; k; v].
void DeinterleaveQkv(FusedQkvLayout layout, int num_heads, int num_kv_heads, int head_dim,
                     Matrix* weight, std::vector<float>* bias);

// Tensor names (without ".weight"/".bias") of one nn.Linear-style layer. Either `qkv` (fused,
// in `qkv_layout`) or q, k and v; mlp_norm empty for a shared norm. Biases are loaded as the
// config says (qkv_bias, o_bias, mlp_bias, norm_bias); `up` is not gated.
struct LayerNames {
  std::string attn_norm, mlp_norm;
  std::string qkv, q, k, v;
  FusedQkvLayout qkv_layout = FusedQkvLayout::kStacked;
  std::string o, up, down;
};
absl::StatusOr<DecoderLayerWeights> LoadLayer(const ModelConfig& config, const WeightLoader& loader,
                                              const LayerNames& names);

// Final pieces shared by the LayerNorm families: the final norm (unless config.final_norm is
// false) and the LM head (`lm_head` unless tied; with a bias when config.lm_head_bias).
absl::Status LoadHead(const ModelConfig& config, const WeightLoader& loader,
                      const std::string& final_norm, const std::string& lm_head,
                      DecoderWeights* weights);

}  // namespace ropewire::model
