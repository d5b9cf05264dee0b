#include "model/cuda/cuda_runner.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/device.h"
#include "model/families/decoder.h"

namespace ropewire::model {

absl::StatusOr<std::unique_ptr<CudaModelRunner>> CudaModelRunner::Load(
    const std::string& model_dir, const RunnerOptions& options) {
  if (kernels::cuda::DeviceCount() == 0) {
    return absl::FailedPreconditionError("device cuda: no CUDA device is visible on this machine");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CausalLm> model, LoadCausalLm(model_dir));
  // The host copy of the weights is dropped once they are on the device.
  return Create(*model, options);
}

absl::StatusOr<std::unique_ptr<CudaModelRunner>> CudaModelRunner::Create(
    const CausalLm& model, const RunnerOptions& options) {
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("block size must be positive, got ", options.block_size));
  }
  const DecoderWeights* weights = DecoderWeightsOf(model);
  if (weights == nullptr) {
    return absl::UnimplementedError(absl::StrCat(model.config().source,
                                                 ": this model has no CUDA implementation"));
  }
  std::unique_ptr<CudaModelRunner> runner(new CudaModelRunner());
  runner->config_ = model.config();
  runner->block_size_ = options.block_size;
  ASSIGN_OR_RETURN(runner->max_model_len_, ResolveMaxModelLen(runner->config_, options));
  cuda::CudaDecoderOptions decoder_options;
  decoder_options.block_size = options.block_size;
  decoder_options.num_blocks = options.num_blocks;
  decoder_options.gpu_memory_utilization = options.gpu_memory_utilization;
  decoder_options.max_num_batched_tokens = options.max_num_batched_tokens;
  ASSIGN_OR_RETURN(runner->decoder_, cuda::MakeCudaDecoder(runner->config_, *weights,
                                                           options.dtype, decoder_options));
  return runner;
}

absl::Status CudaModelRunner::Execute(const StepPlan& plan, std::vector<float>* logits) {
  RETURN_IF_ERROR(CheckStepPlan(plan, config_, num_blocks(), block_size_, max_model_len_));
  return decoder_->Forward(plan, logits);
}

}  // namespace ropewire::model
