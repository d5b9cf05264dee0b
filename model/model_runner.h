// ModelRunner: a loaded model plus its KV cache storage. This is what the scheduler drives, one
// StepPlan at a time, from the engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/causal_lm.h"
#include "model/kv_cache.h"
#include "model/step_plan.h"

namespace ropewire::model {

struct RunnerOptions {
  int block_size = 16;
  // KV capacity: an explicit block count wins; otherwise kv_cache_bytes is divided into blocks.
  int num_blocks = 0;
  int64_t kv_cache_bytes = int64_t(1) << 30;
  int num_threads = 0;  // 0: one per core
};

class ModelRunner {
 public:
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(const std::string& model_dir,
                                                           const RunnerOptions& options);
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(std::unique_ptr<CausalLm> model,
                                                             const RunnerOptions& options);

  const ModelConfig& config() const { return model_->config(); }
  int num_blocks() const { return cache_->geometry().num_blocks; }
  int block_size() const { return cache_->geometry().block_size; }

  // Validates the plan, runs it and returns logits for plan.logits_rows: a row-major
  // [logits_rows.size(), vocab_size] matrix (reusing `logits`' storage).
  absl::Status Execute(const StepPlan& plan, std::vector<float>* logits);

 private:
  ModelRunner() = default;
  std::unique_ptr<CausalLm> model_;
  std::unique_ptr<KvCache> cache_;
};

}  // namespace ropewire::model
