// The step interface: what the engine drives, one StepPlan at a time, from its thread. Each
// backend implements it over its own weights and KV cache storage (model/cpu, model/cuda);
// benchmarks of the serving path plug in one that costs nothing. This header is all the
// scheduler sees of model/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/step_plan.h"

namespace ropewire::model {

// What a backend is asked for when a model is loaded onto it (model/executor.h).
struct ExecutorOptions {
  // Where the model runs: "cpu", or "cuda" (builds with a CUDA compiler).
  std::string device = "cpu";
  // CUDA: storage type of weights, activations and KV ("bf16" or "fp16"; f32 accumulation).
  std::string dtype = "bf16";
  // CPU: storage of the weights (model/weight_formats.h): "auto" keeps each matrix's stored
  // float type; "f32", "bf16", "f16"; and the block formats of `quantization`.
  std::string weight_dtype = "auto";
  std::string quantization = "none";  // none | int8 | int4 | q8_0 | q4_0 | q4_1
  // CPU: storage of the KV cache: "f32", "bf16", "f16", or "auto" (bf16 for 16-bit or
  // quantized weights, f32 for f32 weights).
  std::string kv_cache_dtype = "auto";
  // CUDA: fraction of the device's memory this process may use in all (weights, activations,
  // KV cache); the KV cache gets what the rest leaves, unless num_blocks is given.
  double gpu_memory_utilization = 0.9;
  // CUDA: most tokens one step carries (the scheduler's max_num_batched_tokens), for sizing
  // the activation buffers before the KV cache takes the rest of the memory.
  int max_num_batched_tokens = 2048;
  int block_size = 16;
  // KV capacity: an explicit block count wins; otherwise kv_cache_bytes is divided into blocks.
  int num_blocks = 0;
  int64_t kv_cache_bytes = int64_t(1) << 30;
  int num_threads = 0;  // CPU: 0 for one per core
  // Longest sequence (largest position + 1) served; 0: the model's ModelConfig::max_model_len.
  // RoPE and ALiBi models may be given more than their config's length; absolute encodings may
  // not exceed their position table.
  int64_t max_model_len = 0;
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int num_blocks() const = 0;
  virtual int block_size() const = 0;
  // Longest sequence (largest position + 1) the executor accepts.
  virtual int64_t max_model_len() const { return config().max_model_len; }
  // Validates the plan (CheckStepPlan), runs it and returns logits for plan.logits_rows: a
  // row-major [logits_rows.size(), vocab_size] matrix (reusing `logits`' storage).
  virtual absl::Status Execute(const StepPlan& plan, std::vector<float>* logits) = 0;

  // Identifies the positional tables a sequence of `length` tokens (its largest position + 1)
  // uses: equal keys, equal tables, and keys never decrease with length. Only RoPE's
  // length-dependent scalings (LongRoPE past its original length, dynamic NTK past the trained
  // one) have more than one key. A sequence whose key changes has its cache recomputed: keys
  // are cached un-rotated, but the K/V of layers after the first derive from attention
  // computed with the old tables.
  int64_t PositionTableKey(int64_t length) const;
};

// What every executor checks before running a plan: ValidateStepPlan, and every sequence's
// largest position below max_model_len.
absl::Status CheckStepPlan(const StepPlan& plan, const ModelConfig& config, int num_blocks,
                           int block_size, int64_t max_model_len);

// The longest sequence a model may be given: ExecutorOptions::max_model_len when set (refused
// beyond an absolute position table), else the config's.
absl::StatusOr<int64_t> ResolveMaxModelLen(const ModelConfig& config,
                                           const ExecutorOptions& options);

// KV blocks for `options`: num_blocks when set, else as many as kv_cache_bytes holds at
// `bytes_per_block` (at least one, or an error naming the budget).
absl::StatusOr<int> ResolveNumBlocks(const ExecutorOptions& options, int64_t bytes_per_block);

}  // namespace ropewire::model
