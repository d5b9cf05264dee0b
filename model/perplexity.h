// Perplexity of a token sequence under a model, measured the way llama.cpp's `perplexity` tool
// does so the figures compare: the text is cut into consecutive windows of `context` tokens, the
// first token of each window becomes BOS (when the model has one), and only the second half of
// each window is scored, so that every scored token sees at least context/2 tokens before it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/step_executor.h"

namespace ropewire::model {

struct PerplexityOptions {
  int context = 512;          // tokens per window
  int max_windows = 0;        // 0: every whole window the text holds
  int32_t bos_token_id = -1;  // replaces each window's first token when >= 0
};

struct PerplexityResult {
  double perplexity = 0;  // exp(mean negative log-likelihood)
  double mean_nll = 0;    // nats per scored token
  int64_t scored_tokens = 0;
  int windows = 0;
};

// Runs each window as one sequence on KV blocks 0..n-1 (nothing else may run on the executor
// meanwhile). Errors: a window larger than the executor's cache or maximum length, a text shorter
// than one window, and whatever Execute returns.
absl::StatusOr<PerplexityResult> ComputePerplexity(StepExecutor& executor,
                                                   const std::vector<int32_t>& tokens,
                                                   const PerplexityOptions& options);

// -log softmax(logits)[target], in double precision.
double NegativeLogLikelihood(const float* logits, int64_t vocab, int32_t target);

}  // namespace ropewire::model
