#include "model/perplexity.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace ropewire::model {

double NegativeLogLikelihood(const float* logits, int64_t vocab, int32_t target) {
  const float max_logit = *std::max_element(logits, logits + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - max_logit);
  return std::log(sum) - (double(logits[target]) - max_logit);
}

absl::StatusOr<PerplexityResult> ComputePerplexity(StepExecutor& executor,
                                                   const std::vector<int32_t>& tokens,
                                                   const PerplexityOptions& options) {
  const int context = options.context;
  if (context < 4) return absl::InvalidArgumentError("perplexity context must be >= 4 tokens");
  const int64_t blocks_needed = (context + executor.block_size() - 1) / executor.block_size();
  if (blocks_needed > executor.num_blocks() || context > executor.max_model_len()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "perplexity context of ", context, " tokens exceeds the model's cache or maximum length (",
        executor.max_model_len(), ")"));
  }
  int windows = static_cast<int>(tokens.size() / context);
  if (options.max_windows > 0) windows = std::min(windows, options.max_windows);
  if (windows == 0) {
    return absl::InvalidArgumentError(absl::StrCat("the text has ", tokens.size(),
                                                   " tokens, fewer than one window of ", context));
  }
  const int64_t vocab = executor.config().vocab_size;
  std::vector<int32_t> blocks(blocks_needed);
  std::iota(blocks.begin(), blocks.end(), 0);
  const int first_scored = context / 2;  // logits at position i predict token i + 1

  PerplexityResult result;
  double total_nll = 0.0;
  std::vector<float> logits;
  for (int w = 0; w < windows; ++w) {
    std::vector<int32_t> window(tokens.begin() + int64_t(w) * context,
                                tokens.begin() + int64_t(w + 1) * context);
    if (options.bos_token_id >= 0) window[0] = options.bos_token_id;
    StepPlan plan;
    plan.AddSequence(0, window, 0, 0, blocks, /*want_logits=*/false);
    for (int32_t row = first_scored; row < context - 1; ++row) plan.logits_rows.push_back(row);
    plan.Finalize(executor.block_size());
    RETURN_IF_ERROR(executor.Execute(plan, &logits));
    for (int32_t row = first_scored; row < context - 1; ++row) {
      const float* row_logits = logits.data() + int64_t(row - first_scored) * vocab;
      total_nll += NegativeLogLikelihood(row_logits, vocab, window[row + 1]);
      ++result.scored_tokens;
    }
    ++result.windows;
  }
  result.mean_nll = total_nll / double(result.scored_tokens);
  result.perplexity = std::exp(result.mean_nll);
  return result;
}

}  // namespace ropewire::model
