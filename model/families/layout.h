// How a family's checkpoint names and lays out the tensors of the shared decoder
// (model/decoder_weights.h). Each family describes its layout once, as data; one loader
// (model/families/loader.h) reads every family through it.
#pragma once

#include <string>
#include <vector>

namespace ropewire::model {

// Fused qkv layouts transformers checkpoints use, all turned into [q heads; k heads; v heads].
enum class FusedQkvLayout {
  kStacked,  // already [q; k; v] (MPT Wqkv, Phi-3 qkv_proj, Falcon multi-query, GPT-2)
  kPerHead,  // [head][q, k, v][d] (GPT-NeoX, BLOOM, Falcon multi-head)
  kGrouped,  // [kv group][q × H/KV, k, v][d] (Falcon new decoder architecture)
};

// Tensor names of one layer, relative to the layer's prefix and without ".weight" / ".bias".
// Biases are loaded as the config says (qkv_bias, o_bias, mlp_bias, norm_bias).
struct LayerTensorNames {
  std::string attn_norm;
  std::string mlp_norm;  // empty when one norm feeds attention and MLP (parallel, shared norm)
  // Attention: a fused `qkv` in `qkv_layout`, or `q`, `k` and `v`.
  std::string qkv;
  FusedQkvLayout qkv_layout = FusedQkvLayout::kStacked;
  std::string q, k, v;
  std::string o;
  // MLP: a fused `gate_up` ([gate; up]), `gate` and `up` (gated), or `up` alone (not gated).
  std::string gate_up;
  std::string gate, up;
  std::string down;
};

struct CheckpointLayout {
  // Name roots tried in order; the first under which `embed_tokens` exists is used for every
  // name (GPT-2: transformers saves "transformer.wte", the original checkpoints "wte").
  std::vector<std::string> roots = {""};
  std::string embed_tokens;
  std::string embed_norm;      // a norm right after the embeddings (config.embedding_norm)
  std::string position_table;  // learned absolute positions (sinusoidal ones are computed)
  std::string project_in;      // OPT: used when config.embedding_dim is set
  std::string project_out;
  std::string layer_prefix;  // "$0" stands for the layer index
  LayerTensorNames layer;
  std::string final_norm;  // used when config.final_norm
  std::string lm_head;     // used unless config.tie_word_embeddings
  // GPT-2's Conv1D layers store their weights [in, out], transposed to nn.Linear's [out, in].
  bool transposed_linears = false;
};

}  // namespace ropewire::model
