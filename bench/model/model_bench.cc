#include "bench/model/model_bench.h"

#include <chrono>
#include <fstream>
#include <numeric>
#include <string>

#include "base/status_macros.h"
#include "model/greedy.h"
#include "model/weight_formats.h"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBlockSize = 16;

double SecondsSince(Clock::time_point begin) {
  return std::chrono::duration<double>(Clock::now() - begin).count();
}

model::StepPlan OneSequencePlan(const std::vector<int32_t>& tokens, int32_t cache_start,
                                const std::vector<int32_t>& blocks) {
  model::StepPlan plan;
  plan.AddSequence(0, tokens, cache_start, 0, blocks, /*want_logits=*/true);
  plan.Finalize(kBlockSize);
  return plan;
}

}  // namespace

absl::StatusOr<StorageFormats> ResolveStorage(const model::ExecutorOptions& options,
                                              model::DType stored) {
  model::WeightFormatOptions requested;
  requested.weight_dtype = options.weight_dtype;
  requested.quantization = options.quantization;
  ASSIGN_OR_RETURN(const model::WeightFormatPolicy policy,
                   model::WeightFormatPolicy::Create(requested));
  StorageFormats formats;
  formats.projections = policy.For(model::WeightRole::kProjection, stored);
  formats.lm_head = policy.For(model::WeightRole::kLmHead, stored);
  formats.embedding = policy.For(model::WeightRole::kEmbedding, stored);
  // The CPU executor's rule for "auto": an f32 cache for f32 weights, else bf16.
  const std::string& kv = options.kv_cache_dtype;
  const bool f32_kv =
      kv == "f32" || (kv == "auto" && formats.projections == kernels::WeightFormat::kF32);
  formats.kv_value_bytes = f32_kv ? 4 : 2;
  return formats;
}

int64_t WeightBytes(const LlamaShape& s, const StorageFormats& f) {
  const int64_t q = int64_t(s.num_heads) * s.head_dim();
  const int64_t kv = int64_t(s.num_kv_heads) * s.head_dim();
  const int64_t h = s.hidden_size;
  const int64_t layer =
      (q + 2 * kv) * kernels::RowBytes(f.projections, h) + h * kernels::RowBytes(f.projections, q) +
      2 * s.intermediate_size * kernels::RowBytes(f.projections, h) +
      h * kernels::RowBytes(f.projections, s.intermediate_size) + 2 * h * int64_t(sizeof(float));
  return s.num_layers * layer + s.vocab_size * kernels::RowBytes(f.lm_head, h) +
         s.vocab_size * kernels::RowBytes(f.embedding, h) + h * int64_t(sizeof(float));
}

DecodeTraffic DecodeBytesPerToken(const LlamaShape& s, double mean_kv_len,
                                  const StorageFormats& f) {
  DecodeTraffic traffic;
  // Every weight but the embedding table, of which one row is read.
  traffic.weight_bytes = WeightBytes(s, f) -
                         s.vocab_size * kernels::RowBytes(f.embedding, s.hidden_size) +
                         kernels::RowBytes(f.embedding, s.hidden_size);
  const double kv_per_position =
      2.0 * s.num_kv_heads * s.head_dim() * f.kv_value_bytes * s.num_layers;
  traffic.kv_bytes = int64_t(kv_per_position * mean_kv_len);
  return traffic;
}

PrefillFlops PrefillFlopCount(const LlamaShape& s, int64_t tokens) {
  PrefillFlops flops;
  flops.matmul = 2.0 * double(s.LayerMatmulParams()) * s.num_layers * tokens +
                 2.0 * double(s.vocab_size) * s.hidden_size;  // lm_head on the last row only
  // Query i sees i + 1 keys; Q·Kᵀ and P·V each cost 2·head_dim FLOPs per (query, key, head).
  const double visible_pairs = double(tokens) * double(tokens + 1) / 2.0;
  flops.attention = 2.0 * 2.0 * s.head_dim() * s.num_heads * visible_pairs * s.num_layers;
  return flops;
}

MemoryUse CurrentMemoryUse() {
  MemoryUse use;
  std::ifstream status("/proc/self/status");
  std::string key;
  int64_t kib = 0;
  while (status >> key) {
    if (key == "VmRSS:" && status >> kib) use.rss_bytes = kib << 10;
    if (key == "VmHWM:" && status >> kib) use.peak_rss_bytes = kib << 10;
  }
  return use;
}

void ResetPeakRss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";  // Linux: reset the peak resident set size to the current one
}

absl::StatusOr<std::unique_ptr<ModelBench>> ModelBench::Load(const std::string& dir,
                                                             model::ExecutorOptions options,
                                                             int max_tokens) {
  options.block_size = kBlockSize;
  options.num_blocks = (max_tokens + kBlockSize - 1) / kBlockSize;
  ASSIGN_OR_RETURN(auto executor, model::LoadExecutor(dir, options));
  std::unique_ptr<ModelBench> bench(new ModelBench(std::move(executor)));
  bench->blocks_.resize(options.num_blocks);
  std::iota(bench->blocks_.begin(), bench->blocks_.end(), 0);
  return bench;
}

std::vector<int32_t> ModelBench::RandomTokens(int count, uint64_t seed) const {
  // A linear congruential walk is plenty: the ids only need to be spread over the vocabulary.
  std::vector<int32_t> tokens(count);
  const uint64_t vocab = executor_->config().vocab_size;
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int32_t& t : tokens) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((state >> 33) % vocab);
  }
  return tokens;
}

absl::StatusOr<double> ModelBench::DecodeRun(int prompt_len, int steps, uint64_t seed) {
  const std::vector<int32_t> prompt = RandomTokens(prompt_len, seed);
  RETURN_IF_ERROR(executor_->Execute(OneSequencePlan(prompt, 0, blocks_), &logits_));
  const int64_t vocab = executor_->config().vocab_size;
  int32_t length = prompt_len;
  int32_t next = model::ArgMax(logits_.data(), vocab);
  const Clock::time_point begin = Clock::now();
  for (int i = 0; i < steps; ++i) {
    RETURN_IF_ERROR(executor_->Execute(OneSequencePlan({next}, length, blocks_), &logits_));
    next = model::ArgMax(logits_.data(), vocab);
    ++length;
  }
  return steps / SecondsSince(begin);
}

absl::StatusOr<double> ModelBench::PrefillRun(int tokens, uint64_t seed) {
  const model::StepPlan plan = OneSequencePlan(RandomTokens(tokens, seed), 0, blocks_);
  const Clock::time_point begin = Clock::now();
  RETURN_IF_ERROR(executor_->Execute(plan, &logits_));
  return SecondsSince(begin);
}

}  // namespace ropewire::bench
