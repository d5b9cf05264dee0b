#include "model/cpu/cpu_executor.h"

#include "base/status_macros.h"
#include "kernels/cpu/threading.h"

namespace ropewire::model::cpu {

absl::StatusOr<std::unique_ptr<CpuExecutor>> CpuExecutor::Create(ModelCheckpoint checkpoint,
                                                                 const ExecutorOptions& options) {
  RETURN_IF_ERROR(ValidateDecoder(checkpoint.config, checkpoint.weights));
  const ModelConfig& config = checkpoint.config;
  ASSIGN_OR_RETURN(
      const int num_blocks,
      ResolveNumBlocks(options, CpuKvCache::BytesPerBlock(config, options.block_size)));
  std::unique_ptr<CpuExecutor> executor(new CpuExecutor());
  executor->num_threads_ = options.num_threads;
  ASSIGN_OR_RETURN(executor->max_model_len_, ResolveMaxModelLen(config, options));
  ASSIGN_OR_RETURN(executor->cache_, CpuKvCache::Create(config, num_blocks, options.block_size));
  executor->decoder_ =
      std::make_unique<CpuDecoder>(std::move(checkpoint.config), std::move(checkpoint.weights));
  return executor;
}

absl::Status CpuExecutor::Execute(const StepPlan& plan, std::vector<float>* logits) {
  RETURN_IF_ERROR(CheckStepPlan(plan, config(), num_blocks(), block_size(), max_model_len_));
  logits->resize(plan.logits_rows.size() * config().vocab_size);
  if (plan.num_tokens() == 0) return absl::OkStatus();
  // OpenMP's thread count belongs to the calling thread, and steps run on the engine's thread,
  // not the one that loaded the model.
  kernels::cpu::SetNumThreads(num_threads_);
  decoder_->Forward(plan, *cache_, logits->data());
  return absl::OkStatus();
}

}  // namespace ropewire::model::cpu
