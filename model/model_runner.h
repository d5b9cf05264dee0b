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
  // Where the model runs: "cpu", or "cuda" (model/executor.h; builds with a CUDA compiler).
  std::string device = "cpu";
  // CUDA: storage type of weights, activations and KV ("bf16" or "fp16"; f32 accumulation).
  std::string dtype = "bf16";
  // CUDA: fraction of the device's memory this process may use in all (weights, activations,
  // KV cache); the KV cache gets what the rest leaves, unless num_blocks is given.
  double gpu_memory_utilization = 0.9;
  // CUDA: most tokens one step carries (the scheduler's max_num_batched_tokens), for sizing
  // the activation buffers before the KV cache takes the rest of the memory.
  int max_num_batched_tokens = 2048;
  int block_size = 16;
  // KV capacity: an explicit block count wins; otherwise kv_cache_bytes is divided into blocks.
  int num_blocks = 0;
  int64_t kv_cache_bytes = int64_t(1) << 30;
  int num_threads = 0;  // 0: one per core
  // Longest sequence (largest position + 1) served; 0: the model's ModelConfig::max_model_len.
  // RoPE and ALiBi models may be given more than their config's length; absolute encodings may
  // not exceed their position table.
  int64_t max_model_len = 0;
};

// What the engine drives: anything that runs a StepPlan and returns logits rows. ModelRunner is
// the real one; benchmarks of the serving path plug in a model that costs nothing.
class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int num_blocks() const = 0;
  virtual int block_size() const = 0;
  // Longest sequence (largest position + 1) the executor accepts.
  virtual int64_t max_model_len() const { return config().max_model_len; }
  virtual absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) = 0;
};

// What every executor checks before running a plan: ValidateStepPlan, and every sequence's
// largest position below max_model_len.
absl::Status CheckStepPlan(const StepPlan& plan, const ModelConfig& config, int num_blocks,
                           int block_size, int64_t max_model_len);

// The longest sequence a model may be given: RunnerOptions::max_model_len when set (refused
// beyond an absolute position table), else the config's.
absl::StatusOr<int64_t> ResolveMaxModelLen(const ModelConfig& config, const RunnerOptions& options);

class ModelRunner : public StepExecutor {
 public:
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(const std::string& model_dir,
                                                           const RunnerOptions& options);
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(std::unique_ptr<CausalLm> model,
                                                             const RunnerOptions& options);

  const ModelConfig& config() const override { return model_->config(); }
  int num_blocks() const override { return cache_->geometry().num_blocks; }
  int block_size() const override { return cache_->geometry().block_size; }
  // Longest sequence served (RunnerOptions::max_model_len or the config's).
  int64_t max_model_len() const override { return max_model_len_; }

  // Validates the plan (and every sequence's positions against max_model_len()), runs it and
  // returns logits for plan.logits_rows: a row-major [logits_rows.size(), vocab_size] matrix
  // (reusing `logits`' storage).
  absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) override;

 private:
  ModelRunner() = default;
  std::unique_ptr<CausalLm> model_;
  std::unique_ptr<KvCache> cache_;
  int64_t max_model_len_ = 0;
};

}  // namespace ropewire::model
