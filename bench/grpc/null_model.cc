#include "bench/grpc/null_model.h"

#include <algorithm>

namespace ropewire::bench {

NullModel::NullModel(int vocab_size, int max_model_len, int num_blocks, int block_size)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      row_(static_cast<size_t>(vocab_size), 0.0f) {
  config_.model_type = "null";
  config_.architecture = "NullModelForBenchmarks";
  config_.vocab_size = vocab_size;
  config_.hidden_size = 1;
  config_.num_layers = 1;
  config_.num_heads = 1;
  config_.num_kv_heads = 1;
  config_.head_dim = 1;
  config_.max_position_embeddings = max_model_len;
  config_.max_model_len = max_model_len;
  row_[kEmittedToken] = 10.0f;
}

absl::Status NullModel::Execute(const model::StepPlan& plan, std::vector<float>* logits) {
  const size_t vocab = row_.size();
  logits->resize(plan.logits_rows.size() * vocab);
  for (size_t r = 0; r < plan.logits_rows.size(); ++r) {
    std::copy(row_.begin(), row_.end(), logits->begin() + static_cast<std::ptrdiff_t>(r * vocab));
  }
  return absl::OkStatus();
}

}  // namespace ropewire::bench
