#include "model/model_runner.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cpu/threading.h"
#include "model/families/llama.h"
#include "model/safetensors.h"

namespace ropewire::model {

absl::StatusOr<std::unique_ptr<CausalLm>> LoadCausalLm(const std::string& dir) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(auto store, TensorStore::Open(dir));
  // Every model type LoadModelConfig accepts is one of the Llama family for now.
  return LoadLlamaFamily(config, *store);
}

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Load(const std::string& model_dir,
                                                               const RunnerOptions& options) {
  kernels::cpu::SetNumThreads(options.num_threads);
  ASSIGN_OR_RETURN(auto model, LoadCausalLm(model_dir));
  return Create(std::move(model), options);
}

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Create(std::unique_ptr<CausalLm> model,
                                                                 const RunnerOptions& options) {
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("block size must be positive, got ", options.block_size));
  }
  int64_t num_blocks = options.num_blocks;
  if (num_blocks <= 0) {
    const int64_t per_block = KvCache::BytesPerBlock(model->config(), options.block_size);
    num_blocks = options.kv_cache_bytes / per_block;
    if (num_blocks <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("KV budget of ", options.kv_cache_bytes,
                                                     " bytes is below one block (", per_block, " bytes)"));
    }
    num_blocks = std::min<int64_t>(num_blocks, std::numeric_limits<int32_t>::max());
  }
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  ASSIGN_OR_RETURN(runner->cache_,
                   KvCache::Create(model->config(), static_cast<int>(num_blocks), options.block_size));
  runner->model_ = std::move(model);
  return runner;
}

absl::Status ModelRunner::Execute(const StepPlan& plan, std::vector<float>* logits) {
  RETURN_IF_ERROR(ValidateStepPlan(plan, config().vocab_size, num_blocks(), block_size()));
  logits->resize(plan.logits_rows.size() * config().vocab_size);
  if (plan.num_tokens() == 0) return absl::OkStatus();
  return model_->Forward(plan, *cache_, logits->data());
}

}  // namespace ropewire::model
