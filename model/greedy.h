// Offline greedy generation of one sequence on a StepExecutor, used by ropewire-generate and by
// tests. The KV blocks are simply 0..n-1: nothing else runs on the executor meanwhile.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "model/step_executor.h"

namespace ropewire::model {

struct GreedyOptions {
  int max_tokens = 16;
  int prefill_chunk = 0;            // prompt tokens per step; 0 = the whole prompt in one step
  bool stop_at_eos = true;          // stop after emitting one of the config's EOS ids
  bool keep_prompt_logits = false;  // also return logits of every prompt position
};

struct GreedyResult {
  std::vector<int32_t> tokens;       // generated ids (the EOS that stopped it included)
  std::vector<float> last_logits;    // logits of the last position fed to the model
  std::vector<float> prompt_logits;  // [prompt_len, vocab] when keep_prompt_logits
};

absl::StatusOr<GreedyResult> GenerateGreedy(StepExecutor& executor,
                                            const std::vector<int32_t>& prompt,
                                            const GreedyOptions& options);

// Index of the largest value (the first one on ties).
int32_t ArgMax(const float* values, int64_t n);

}  // namespace ropewire::model
