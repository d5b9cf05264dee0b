// The StepExecutor of `--device cuda`: the model's weights, activations and paged KV cache on
// one GPU (model/cuda/cuda_decoder.h), driven one StepPlan at a time like the CPU executor.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/cuda/cuda_decoder.h"
#include "model/decoder_weights.h"
#include "model/step_executor.h"

namespace ropewire::model::cuda {

class CudaExecutor : public StepExecutor {
 public:
  // FAILED_PRECONDITION when no CUDA device is visible.
  static absl::Status CheckDeviceAvailable();
  // Uploads the checkpoint's weights in options.dtype and sizes the KV cache: options.num_blocks
  // when set, else what options.gpu_memory_utilization of the device's memory leaves after
  // weights and activation buffers.
  static absl::StatusOr<std::unique_ptr<CudaExecutor>> Create(const ModelCheckpoint& checkpoint,
                                                              const ExecutorOptions& options);

  const ModelConfig& config() const override { return config_; }
  int num_blocks() const override { return decoder_->num_blocks(); }
  int block_size() const override { return block_size_; }
  int64_t max_model_len() const override { return max_model_len_; }
  int64_t weight_bytes() const { return decoder_->weight_bytes(); }
  int64_t kv_cache_bytes() const { return decoder_->kv_cache_bytes(); }

  absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) override;

 private:
  CudaExecutor() = default;
  ModelConfig config_;
  int block_size_ = 0;
  int64_t max_model_len_ = 0;
  std::unique_ptr<CudaDecoder> decoder_;
};

}  // namespace ropewire::model::cuda
