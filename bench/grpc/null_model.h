// A StepExecutor that costs (almost) nothing: every row of logits is the same fixed vector, so
// greedy sampling always picks the same token. Driving the real Engine with it leaves only the
// serving path to measure: scheduling, sampling over the vocabulary, stream handling and gRPC.
#pragma once

#include <vector>

#include "model/config.h"
#include "model/step_executor.h"

namespace ropewire::bench {

class NullModel : public model::StepExecutor {
 public:
  // `vocab_size` sets the sampler's work per token (256: the test fixture; 32000: Llama-2 size).
  NullModel(int vocab_size, int max_model_len, int num_blocks, int block_size);

  const model::ModelConfig& config() const override { return config_; }
  int num_blocks() const override { return num_blocks_; }
  int block_size() const override { return block_size_; }
  // Copies the fixed row once per requested logits row; the plan is not inspected.
  absl::Status Execute(const model::StepPlan& plan, std::vector<float>* logits) override;

  static constexpr int kEmittedToken = 7;

 private:
  model::ModelConfig config_;
  int num_blocks_;
  int block_size_;
  std::vector<float> row_;
};

}  // namespace ropewire::bench
