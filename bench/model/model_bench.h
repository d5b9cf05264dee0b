// Single-stream decode and whole-prompt prefill on a loaded executor, with the byte and FLOP
// accounting that turns their times into fractions of the machine's bandwidth and FMA peak.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/model/random_llama.h"
#include "kernels/weight_format.h"
#include "model/executor.h"

namespace ropewire::bench {

// How the loaded model stores what a decode step reads.
struct StorageFormats {
  kernels::WeightFormat projections = kernels::WeightFormat::kF32;
  kernels::WeightFormat lm_head = kernels::WeightFormat::kF32;
  kernels::WeightFormat embedding = kernels::WeightFormat::kF32;
  int64_t kv_value_bytes = 4;
};

// The formats the loader and the CPU executor choose for a checkpoint stored as `stored` under
// `options` (--weight-dtype, --quantization, --kv-cache-dtype).
absl::StatusOr<StorageFormats> ResolveStorage(const model::ExecutorOptions& options,
                                              model::DType stored);

// Bytes of the loaded weights (every matrix in its format, norms in f32).
int64_t WeightBytes(const LlamaShape& shape, const StorageFormats& formats);

// Bytes one decode step must read from memory at the least: every weight it multiplies by (all
// projections and lm_head, packed blocks with their scales), the norm scales, one embedding row,
// and the K and V of every cached position in every layer in the cache's dtype.
struct DecodeTraffic {
  int64_t weight_bytes = 0;
  int64_t kv_bytes = 0;  // averaged over the decode steps of a run
  int64_t total() const { return weight_bytes + kv_bytes; }
};
DecodeTraffic DecodeBytesPerToken(const LlamaShape& shape, double mean_kv_len,
                                  const StorageFormats& formats);

// FLOPs of one prefill step over `tokens` tokens of a fresh sequence with logits for its last
// token: 2 per multiply-add in the projections (all rows) and lm_head (one row), plus causal
// attention (Q·Kᵀ and P·V over the visible keys of every query).
struct PrefillFlops {
  double matmul = 0.0;
  double attention = 0.0;
  double total() const { return matmul + attention; }
};
PrefillFlops PrefillFlopCount(const LlamaShape& shape, int64_t tokens);

// Resident memory of this process, from /proc/self/status; ResetPeakRss() restarts VmHWM.
struct MemoryUse {
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
};
MemoryUse CurrentMemoryUse();
void ResetPeakRss();

class ModelBench {
 public:
  // Loads the model at `dir` (a directory or a GGUF file) with `options`' storage formats and
  // threads, and a KV cache sized for one sequence of `max_tokens` tokens.
  static absl::StatusOr<std::unique_ptr<ModelBench>> Load(const std::string& dir,
                                                          model::ExecutorOptions options,
                                                          int max_tokens);

  // Prefills a random prompt of `prompt_len` tokens (untimed), then times `steps` greedy decode
  // steps, each one token through the model plus the argmax. Returns tokens per second.
  absl::StatusOr<double> DecodeRun(int prompt_len, int steps, uint64_t seed);

  // Times one step over a random prompt of `tokens` tokens starting at position 0, with logits
  // for its last token. Returns seconds.
  absl::StatusOr<double> PrefillRun(int tokens, uint64_t seed);

 private:
  explicit ModelBench(std::unique_ptr<model::StepExecutor> executor)
      : executor_(std::move(executor)) {}
  std::vector<int32_t> RandomTokens(int count, uint64_t seed) const;

  std::unique_ptr<model::StepExecutor> executor_;
  std::vector<int32_t> blocks_;  // the one sequence's block table: 0..n-1
  std::vector<float> logits_;
};

}  // namespace ropewire::bench
