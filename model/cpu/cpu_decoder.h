// The decoder forward pass on the CPU (DESIGN.md's data flow, step 2): embeddings, then per
// layer norm → attention with the model's positional encoding inside the paged kernel → MLP in
// the config's residual layout, a final norm and the LM head, all in f32 over the host weights
// (model/decoder_weights.h) and the CPU KV cache.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "kernels/rope_table.h"
#include "model/config.h"
#include "model/cpu/kv_cache.h"
#include "model/decoder_weights.h"
#include "model/step_plan.h"

namespace ropewire::model::cpu {

class CpuDecoder {
 public:
  // The weights must have passed ValidateDecoder for `config`.
  CpuDecoder(ModelConfig config, DecoderWeights weights);

  const ModelConfig& config() const { return config_; }
  // Appends the plan's tokens to `cache` and writes the logits of plan.logits_rows, one row of
  // vocab_size floats each, to `logits`. The plan has been validated against the cache.
  void Forward(const StepPlan& plan, CpuKvCache& cache, float* logits);

 private:
  // Scratch buffers sized for the largest step seen so far.
  struct Workspace {
    std::vector<float> hidden, normed, mlp_normed, qkv, attention, up, activation, embedded,
        final_rows, projected;
  };

  const kernels::PositionEncoding& LayerPosition(int layer) const;
  int64_t QWidth() const { return int64_t(config_.num_heads) * config_.head_dim; }
  int64_t KvWidth() const { return int64_t(config_.num_kv_heads) * config_.head_dim; }

  void Resize(int64_t tokens);
  void Norm(const NormWeights& norm, const float* x, float* out, int64_t rows) const;
  void Embed(const StepPlan& plan, int64_t tokens);
  // Attention of layer `index` over `in` (normed rows), its output projection added to the
  // residual stream.
  void Attend(int index, const float* in, const StepPlan& plan, CpuKvCache& cache, int64_t tokens);
  void Mlp(const DecoderLayerWeights& layer, const float* in, int64_t tokens);
  void RunLayer(int index, const StepPlan& plan, CpuKvCache& cache, int64_t tokens);
  void Head(const StepPlan& plan, float* logits);

  ModelConfig config_;
  DecoderWeights w_;
  std::vector<std::shared_ptr<kernels::RopeTableSet>> rope_sets_;  // per layer; null: no RoPE
  Workspace ws_;
};

}  // namespace ropewire::model::cpu
