// Random Llama-shaped checkpoints written at bench time: a Hugging Face directory (config.json
// plus safetensors shards and their index) that the executor loads like any other model.
// Nothing is downloaded and nothing large is committed; the numbers are random but the shapes,
// names and file formats are those of real models, so the forward pass does the real work.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/safetensors.h"

namespace ropewire::bench {

struct LlamaShape {
  std::string name;
  int64_t vocab_size = 32000;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 2048;
  int num_layers = 12;
  int num_heads = 12;
  int num_kv_heads = 4;

  int64_t head_dim() const { return hidden_size / num_heads; }
  // Weights of the q, k, v, o, gate, up and down projections of one layer.
  int64_t LayerMatmulParams() const;
  // Every parameter of the checkpoint: embeddings, layers (with norms), final norm, lm_head.
  int64_t TotalParams() const;
};

// The shapes the benchmark knows by name: "small" (about 100M parameters, every weight fits a
// large L3), "large" (0.5B parameters, 2 GB of f32 weights, several times any LLC) and
// "llama3-3b" (Llama-3.2-3B's shape: 3.6B parameters with its untied 128k-entry LM head) and
// "llama3-8b" (Llama-3-8B's: 8.0B parameters, 16 GB in bf16).
absl::StatusOr<LlamaShape> NamedShape(const std::string& name);
std::vector<std::string> NamedShapeList();

// Writes config.json, one safetensors shard per layer (plus one for embeddings, final norm and
// lm_head) and model.safetensors.index.json into `dir`, which must exist. Weights are drawn
// approximately from N(0, 0.02²) (norm scales are 1, as at initialisation), deterministically
// from `seed`, and stored as `dtype` (kF32, kBF16 or kF16).
absl::Status WriteRandomLlama(const LlamaShape& shape, uint64_t seed, const std::string& dir,
                              model::DType dtype = model::DType::kF32);

// A fresh directory under `parent` that is removed, with everything in it, on destruction.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Create(const std::string& parent, const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }
  // Removes the directory now (after the model is loaded its files are no longer needed).
  void Remove();

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace ropewire::bench
