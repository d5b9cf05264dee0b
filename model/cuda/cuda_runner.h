// The StepExecutor of `--device cuda`: the model's weights, activations and paged KV cache on
// one GPU (model/cuda/cuda_decoder.h), driven one StepPlan at a time like the CPU ModelRunner.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/causal_lm.h"
#include "model/cuda/cuda_decoder.h"
#include "model/model_runner.h"

namespace ropewire::model {

class CudaModelRunner : public StepExecutor {
 public:
  // Loads the checkpoint on the host (f32), uploads it in options.dtype and sizes the KV cache:
  // options.num_blocks when set, else what options.gpu_memory_utilization of the device's
  // memory leaves after weights and activation buffers. FAILED_PRECONDITION without a GPU.
  static absl::StatusOr<std::unique_ptr<CudaModelRunner>> Load(const std::string& model_dir,
                                                               const RunnerOptions& options);
  static absl::StatusOr<std::unique_ptr<CudaModelRunner>> Create(const CausalLm& model,
                                                                 const RunnerOptions& options);

  const ModelConfig& config() const override { return config_; }
  int num_blocks() const override { return decoder_->num_blocks(); }
  int block_size() const override { return block_size_; }
  int64_t max_model_len() const override { return max_model_len_; }
  int64_t weight_bytes() const { return decoder_->weight_bytes(); }
  int64_t kv_cache_bytes() const { return decoder_->kv_cache_bytes(); }

  absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) override;

 private:
  CudaModelRunner() = default;
  ModelConfig config_;
  int block_size_ = 0;
  int64_t max_model_len_ = 0;
  std::unique_ptr<cuda::CudaDecoder> decoder_;
};

}  // namespace ropewire::model
