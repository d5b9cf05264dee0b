// Token sampling from one sequence's logits: penalties, temperature, top-k, top-p, min-p,
// seeded draws, and log-probabilities. A sequence's choice depends only on its own logits, its
// own token history and its seed — never on what else shares the batch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ropewire::model {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off (prompt and output tokens, divides positive logits)
  float presence_penalty = 0.0f;    // subtracted once from every token already generated
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the generated tokens
  std::optional<uint64_t> seed;     // unset: a random seed is drawn at submission
  int logprobs = 0;                 // top-n log-probabilities to return with each token (0: none)

  // Returns an error naming the first invalid parameter.
  absl::Status Validate(int64_t vocab_size) const;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;           // of the chosen token under the model's distribution
  std::vector<TokenLogprob> top;  // `logprobs` most likely tokens, best first
};

class Sampler {
 public:
  explicit Sampler(int64_t vocab_size) : vocab_size_(vocab_size) {}

  // Chooses the next token. `logits` is the raw row (vocab_size floats, not modified);
  // `prompt` and `output` are the sequence's tokens; `seed` its resolved seed. The draw for the
  // i-th output token uses only (seed, i), so recomputation after preemption repeats it.
  SampledToken Sample(const float* logits, const SamplingParams& params,
                      const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                      uint64_t seed);

 private:
  // The row to sample from: `logits` itself, or a penalised copy in work_ (only the entries of
  // tokens the sequence has seen change).
  const float* ApplyPenalties(const float* logits, const SamplingParams& params,
                              const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& output);
  int32_t Draw(const float* x, const SamplingParams& params, uint64_t seed, uint64_t draw_index);
  int32_t DrawFromAll(const float* x, float max_logit, float inv_temperature, double u);
  bool GatherCandidates(const float* x, const SamplingParams& params, float max_logit, float cutoff,
                        double total_estimate);
  void FillLogprobs(const float* logits, int n, int32_t chosen, SampledToken* out);

  int64_t vocab_size_;
  std::vector<float> work_;       // penalised logits
  std::vector<int32_t> touched_;  // tokens penalties apply to
  std::vector<int32_t> order_;    // candidate token ids
  std::vector<float> probs_;
  // Per kScanChunk logits (model/vocab_scan.h): largest, Σexp relative to it, mass.
  std::vector<float> chunk_max_;
  std::vector<float> chunk_sum_;
  std::vector<double> chunk_mass_;
  std::vector<float> scratch_;
};

// splitmix64-based uniform double in [0, 1) for (seed, index): the sampler's random source.
double UniformFromSeed(uint64_t seed, uint64_t index);

}  // namespace ropewire::model
