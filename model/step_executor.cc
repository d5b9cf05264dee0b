#include "model/step_executor.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/rope_table.h"

namespace ropewire::model {

absl::StatusOr<int64_t> ResolveMaxModelLen(const ModelConfig& config,
                                           const ExecutorOptions& options) {
  if (options.max_model_len <= 0) return config.max_model_len;
  if (!config.position.IsRelative() && options.max_model_len > config.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_model_len ", options.max_model_len, " exceeds the ", config.max_model_len,
        " positions of the model's ", PositionEncodingName(config.position), " position table"));
  }
  return options.max_model_len;
}

absl::StatusOr<int> ResolveNumBlocks(const ExecutorOptions& options, int64_t bytes_per_block) {
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block size must be positive, got ", options.block_size));
  }
  if (options.num_blocks > 0) return options.num_blocks;
  const int64_t num_blocks = options.kv_cache_bytes / bytes_per_block;
  if (num_blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("KV budget of ", options.kv_cache_bytes,
                                                   " bytes is below one block (", bytes_per_block,
                                                   " bytes)"));
  }
  return static_cast<int>(std::min<int64_t>(num_blocks, std::numeric_limits<int32_t>::max()));
}

absl::Status CheckStepPlan(const StepPlan& plan, const ModelConfig& config, int num_blocks,
                           int block_size, int64_t max_model_len) {
  RETURN_IF_ERROR(ValidateStepPlan(plan, config.vocab_size, num_blocks, block_size));
  for (int s = 0; s < plan.num_seqs(); ++s) {
    const int64_t length = int64_t(plan.position_offset[s]) + plan.kv_len[s];
    if (length > max_model_len) {
      return absl::OutOfRangeError(absl::StrCat("sequence ", plan.seq_ids[s], " reaches position ",
                                                length - 1, " but the model serves ", max_model_len,
                                                " positions (max_model_len, ",
                                                PositionEncodingName(config.position), ")"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Every distinct RoPE spec among the layers (one when all layers share the model's encoding).
std::vector<const kernels::RopeSpec*> RopeSpecs(const ModelConfig& config) {
  std::vector<const kernels::RopeSpec*> specs;
  if (config.position_by_layer.empty()) {
    if (config.position.kind == kernels::PositionKind::kRope)
      specs.push_back(&config.position.rope);
    return specs;
  }
  for (const kernels::PositionEncoding& layer : config.position_by_layer) {
    if (layer.kind == kernels::PositionKind::kRope) specs.push_back(&layer.rope);
  }
  return specs;
}

}  // namespace

int64_t StepExecutor::PositionTableKey(int64_t length) const {
  // Each layer's key is non-decreasing in length, so their sum changes exactly when one does.
  int64_t key = 0;
  for (const kernels::RopeSpec* spec : RopeSpecs(config()))
    key += kernels::RopeTableKey(*spec, length);
  return key;
}

}  // namespace ropewire::model
