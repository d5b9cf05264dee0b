#include "model/cpu/cpu_executor.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cpu/threading.h"

namespace ropewire::model::cpu {
namespace {

// --kv-cache-dtype, where "auto" follows the weights: f32 weights keep an f32 cache, 16-bit or
// quantized ones a bf16 cache (half the bytes per decode step, the range of f32).
absl::StatusOr<kernels::KvDtype> ResolveKvDtype(const ExecutorOptions& options,
                                                const DecoderWeights& weights) {
  const std::string& dtype = options.kv_cache_dtype;
  if (dtype == "f32") return kernels::KvDtype::kF32;
  if (dtype == "bf16") return kernels::KvDtype::kBF16;
  if (dtype == "f16") return kernels::KvDtype::kF16;
  if (dtype != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--kv-cache-dtype: \"", dtype, "\" is not one of auto, f32, bf16, f16"));
  }
  const Weight& projection = weights.layers.front().qkv;
  return projection.format() == kernels::WeightFormat::kF32 ? kernels::KvDtype::kF32
                                                            : kernels::KvDtype::kBF16;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuExecutor>> CpuExecutor::Create(ModelCheckpoint checkpoint,
                                                                 const ExecutorOptions& options) {
  RETURN_IF_ERROR(ValidateDecoder(checkpoint.config, checkpoint.weights));
  const ModelConfig& config = checkpoint.config;
  ASSIGN_OR_RETURN(const kernels::KvDtype kv_dtype, ResolveKvDtype(options, checkpoint.weights));
  ASSIGN_OR_RETURN(
      const int num_blocks,
      ResolveNumBlocks(options, CpuKvCache::BytesPerBlock(config, options.block_size, kv_dtype)));
  std::unique_ptr<CpuExecutor> executor(new CpuExecutor());
  executor->num_threads_ = options.num_threads;
  ASSIGN_OR_RETURN(executor->max_model_len_, ResolveMaxModelLen(config, options));
  ASSIGN_OR_RETURN(executor->cache_,
                   CpuKvCache::Create(config, num_blocks, options.block_size, kv_dtype));
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
