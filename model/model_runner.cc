#include "model/model_runner.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cpu/threading.h"
#include "model/position_config.h"

namespace ropewire::model {

absl::StatusOr<int64_t> ResolveMaxModelLen(const ModelConfig& config, const RunnerOptions& options) {
  if (options.max_model_len <= 0) return config.max_model_len;
  if (!config.position.IsRelative() && options.max_model_len > config.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_model_len ", options.max_model_len, " exceeds the ", config.max_model_len,
        " positions of the model's ", PositionEncodingName(config.position), " position table"));
  }
  return options.max_model_len;
}

absl::Status CheckStepPlan(const StepPlan& plan, const ModelConfig& config, int num_blocks,
                           int block_size, int64_t max_model_len) {
  RETURN_IF_ERROR(ValidateStepPlan(plan, config.vocab_size, num_blocks, block_size));
  for (int s = 0; s < plan.num_seqs(); ++s) {
    const int64_t length = int64_t(plan.position_offset[s]) + plan.kv_len[s];
    if (length > max_model_len) {
      return absl::OutOfRangeError(absl::StrCat(
          "sequence ", plan.seq_ids[s], " reaches position ", length - 1, " but the model serves ",
          max_model_len, " positions (max_model_len, ", PositionEncodingName(config.position),
          ")"));
    }
  }
  return absl::OkStatus();
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
  ASSIGN_OR_RETURN(const int64_t max_model_len, ResolveMaxModelLen(model->config(), options));
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  runner->max_model_len_ = max_model_len;
  ASSIGN_OR_RETURN(runner->cache_,
                   KvCache::Create(model->config(), static_cast<int>(num_blocks), options.block_size));
  runner->model_ = std::move(model);
  return runner;
}

absl::Status ModelRunner::Execute(const StepPlan& plan, std::vector<float>* logits) {
  RETURN_IF_ERROR(CheckStepPlan(plan, config(), num_blocks(), block_size(), max_model_len_));
  logits->resize(plan.logits_rows.size() * config().vocab_size);
  if (plan.num_tokens() == 0) return absl::OkStatus();
  return model_->Forward(plan, *cache_, logits->data());
}

}  // namespace ropewire::model
