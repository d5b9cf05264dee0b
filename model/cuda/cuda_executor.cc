#include "model/cuda/cuda_executor.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/device.h"

namespace ropewire::model::cuda {

absl::Status CudaExecutor::CheckDeviceAvailable() {
  if (kernels::cuda::DeviceCount() == 0) {
    return absl::FailedPreconditionError("device cuda: no CUDA device is visible on this machine");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(
    const ModelCheckpoint& checkpoint, const ExecutorOptions& options) {
  RETURN_IF_ERROR(CheckDeviceAvailable());
  RETURN_IF_ERROR(ValidateDecoder(checkpoint.config, checkpoint.weights));
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block size must be positive, got ", options.block_size));
  }
  std::unique_ptr<CudaExecutor> executor(new CudaExecutor());
  executor->config_ = checkpoint.config;
  executor->block_size_ = options.block_size;
  ASSIGN_OR_RETURN(executor->max_model_len_, ResolveMaxModelLen(executor->config_, options));
  CudaDecoderOptions decoder_options;
  decoder_options.block_size = options.block_size;
  decoder_options.num_blocks = options.num_blocks;
  decoder_options.gpu_memory_utilization = options.gpu_memory_utilization;
  decoder_options.max_num_batched_tokens = options.max_num_batched_tokens;
  ASSIGN_OR_RETURN(executor->decoder_, MakeCudaDecoder(executor->config_, checkpoint.weights,
                                                       options.dtype, decoder_options));
  return executor;
}

absl::Status CudaExecutor::Execute(const StepPlan& plan, std::vector<float>* logits) {
  RETURN_IF_ERROR(CheckStepPlan(plan, config_, num_blocks(), block_size_, max_model_len_));
  return decoder_->Forward(plan, logits);
}

}  // namespace ropewire::model::cuda
