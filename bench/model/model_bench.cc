#include "bench/model/model_bench.h"

#include <chrono>
#include <numeric>

#include "base/status_macros.h"
#include "model/greedy.h"

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

DecodeTraffic DecodeBytesPerToken(const LlamaShape& s, double mean_kv_len) {
  const int64_t f32 = sizeof(float);
  DecodeTraffic traffic;
  const int64_t per_layer = s.LayerMatmulParams() + 2 * s.hidden_size;  // projections + norms
  traffic.weight_bytes = f32 * (s.num_layers * per_layer + s.vocab_size * s.hidden_size  // lm_head
                                + 2 * s.hidden_size);  // final norm, embedding row
  const double kv_per_position = 2.0 * s.num_kv_heads * s.head_dim() * f32 * s.num_layers;
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

absl::StatusOr<std::unique_ptr<ModelBench>> ModelBench::Load(const std::string& path, int threads,
                                                             int max_tokens,
                                                             const std::string& weight_dtype) {
  model::ExecutorOptions options;
  options.weight_dtype = weight_dtype;
  options.block_size = kBlockSize;
  options.num_blocks = (max_tokens + kBlockSize - 1) / kBlockSize;
  options.num_threads = threads;
  ASSIGN_OR_RETURN(auto executor, model::LoadExecutor(path, options));
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
