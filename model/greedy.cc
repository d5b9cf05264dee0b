#include "model/greedy.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace ropewire::model {

int32_t ArgMax(const float* values, int64_t n) {
  return static_cast<int32_t>(std::max_element(values, values + n) - values);
}

absl::StatusOr<GreedyResult> GenerateGreedy(StepExecutor& executor,
                                            const std::vector<int32_t>& prompt,
                                            const GreedyOptions& options) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt must hold at least one token");
  if (options.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  const int64_t vocab = executor.config().vocab_size;
  const int64_t total = static_cast<int64_t>(prompt.size()) + options.max_tokens;
  const int64_t needed_blocks = (total + executor.block_size() - 1) / executor.block_size();
  if (needed_blocks > executor.num_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("sequence of ", total, " tokens needs ",
                                                     needed_blocks, " KV blocks; the cache has ",
                                                     executor.num_blocks()));
  }
  std::vector<int32_t> blocks(needed_blocks);
  std::iota(blocks.begin(), blocks.end(), 0);

  GreedyResult result;
  std::vector<float> logits;
  const int chunk =
      options.prefill_chunk > 0 ? options.prefill_chunk : static_cast<int>(prompt.size());
  for (size_t start = 0; start < prompt.size(); start += chunk) {
    const size_t end = std::min(prompt.size(), start + chunk);
    StepPlan plan;
    std::vector<int32_t> piece(prompt.begin() + start, prompt.begin() + end);
    plan.AddSequence(0, piece, static_cast<int32_t>(start), 0, blocks, /*want_logits=*/false);
    if (options.keep_prompt_logits) {
      for (int32_t row = 0; row < static_cast<int32_t>(piece.size()); ++row)
        plan.logits_rows.push_back(row);
    } else if (end == prompt.size()) {
      plan.logits_rows.push_back(static_cast<int32_t>(piece.size()) - 1);
    }
    plan.Finalize(executor.block_size());
    RETURN_IF_ERROR(executor.Execute(plan, &logits));
    if (options.keep_prompt_logits) {
      result.prompt_logits.insert(result.prompt_logits.end(), logits.begin(), logits.end());
    }
  }
  result.last_logits.assign(logits.end() - vocab, logits.end());

  const auto& eos = executor.config().eos_token_ids;
  int32_t length = static_cast<int32_t>(prompt.size());
  for (int i = 0; i < options.max_tokens; ++i) {
    const int32_t next = ArgMax(result.last_logits.data(), vocab);
    result.tokens.push_back(next);
    if (options.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    if (i + 1 == options.max_tokens) break;
    StepPlan plan;
    plan.AddSequence(0, {next}, length, 0, blocks, /*want_logits=*/true);
    plan.Finalize(executor.block_size());
    RETURN_IF_ERROR(executor.Execute(plan, &logits));
    result.last_logits = logits;
    ++length;
  }
  return result;
}

}  // namespace ropewire::model
