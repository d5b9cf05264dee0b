// The StepExecutor of `--device cpu`: the decoder's weights in host memory and the paged KV cache
// in huge-page advised storage, driven one StepPlan at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/cpu/cpu_decoder.h"
#include "model/cpu/kv_cache.h"
#include "model/decoder_weights.h"
#include "model/step_executor.h"

namespace ropewire::model::cpu {

class CpuExecutor : public StepExecutor {
 public:
  // Takes the checkpoint's weights as they are and sizes the KV cache: options.num_blocks when
  // set, else as many blocks as options.kv_cache_bytes holds. Steps run on
  // options.num_threads threads, whichever thread calls Execute.
  static absl::StatusOr<std::unique_ptr<CpuExecutor>> Create(ModelCheckpoint checkpoint,
                                                             const ExecutorOptions& options);

  const ModelConfig& config() const override { return decoder_->config(); }
  int num_blocks() const override { return cache_->geometry().num_blocks; }
  int block_size() const override { return cache_->geometry().block_size; }
  int64_t max_model_len() const override { return max_model_len_; }
  absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) override;

 private:
  CpuExecutor() = default;
  std::unique_ptr<CpuDecoder> decoder_;
  std::unique_ptr<CpuKvCache> cache_;
  int64_t max_model_len_ = 0;
  int num_threads_ = 0;  // kernels::cpu::SetNumThreads: 0 for one per core
};

}  // namespace ropewire::model::cpu
