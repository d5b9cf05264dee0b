#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace ropewire::model {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

absl::Status Invalid(const char* name, const std::string& rule, double value) {
  return absl::InvalidArgumentError(absl::StrCat(name, " must be ", rule, ", got ", value));
}

}  // namespace

double UniformFromSeed(uint64_t seed, uint64_t index) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ (index * 0xd1b54a32d192ed03ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

absl::Status SamplingParams::Validate(int64_t vocab_size) const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) return Invalid("temperature", ">= 0", temperature);
  if (top_k < 0) return Invalid("top_k", ">= 0 (0 disables it)", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) return Invalid("top_p", "in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return Invalid("min_p", "in [0, 1]", min_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return Invalid("repetition_penalty", "> 0", repetition_penalty);
  }
  if (!(std::abs(presence_penalty) <= 2.0f)) return Invalid("presence_penalty", "in [-2, 2]", presence_penalty);
  if (!(std::abs(frequency_penalty) <= 2.0f)) return Invalid("frequency_penalty", "in [-2, 2]", frequency_penalty);
  if (logprobs < 0 || logprobs > 20) return Invalid("logprobs", "in [0, 20]", logprobs);
  if (logprobs > vocab_size) return Invalid("logprobs", "at most the vocabulary size", logprobs);
  return absl::OkStatus();
}

void Sampler::ApplyPenalties(const SamplingParams& params, const std::vector<int32_t>& prompt,
                             const std::vector<int32_t>& output) {
  if (params.repetition_penalty != 1.0f) {
    // Each distinct token of prompt and output is penalised once, as transformers does.
    auto penalise = [&](int32_t t) {
      float& x = work_[t];
      if (std::isnan(x)) return;
      x = x > 0 ? x / params.repetition_penalty : x * params.repetition_penalty;
    };
    std::vector<bool> seen(vocab_size_, false);
    for (const auto* tokens : {&prompt, &output}) {
      for (int32_t t : *tokens) {
        if (t >= 0 && t < vocab_size_ && !seen[t]) {
          seen[t] = true;
          penalise(t);
        }
      }
    }
  }
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    counts_.assign(vocab_size_, 0);
    for (int32_t t : output) {
      if (t >= 0 && t < vocab_size_) ++counts_[t];
    }
    for (int32_t t : output) {
      if (t < 0 || t >= vocab_size_ || counts_[t] == 0) continue;
      work_[t] -= params.frequency_penalty * counts_[t] + params.presence_penalty;
      counts_[t] = 0;  // apply once per distinct token
    }
  }
}

int32_t Sampler::Draw(const SamplingParams& params, uint64_t seed, uint64_t draw_index) {
  // Candidates sorted by logit, best first (ties by token id so the order is deterministic).
  const int64_t keep = params.top_k > 0 ? std::min<int64_t>(params.top_k, vocab_size_) : vocab_size_;
  order_.resize(vocab_size_);
  std::iota(order_.begin(), order_.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return work_[a] > work_[b] || (work_[a] == work_[b] && a < b); };
  std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), better);
  order_.resize(keep);

  probs_.resize(keep);
  const float max_logit = work_[order_[0]];
  double total = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    probs_[i] = std::exp((work_[order_[i]] - max_logit) / params.temperature);
    total += probs_[i];
  }
  int64_t cut = keep;
  if (params.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double mass = 0.0;
    for (int64_t i = 0; i < keep; ++i) {
      mass += probs_[i] / total;
      if (mass >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (params.min_p > 0.0f) {  // drop tokens below min_p times the best probability
    const float threshold = params.min_p * probs_[0];
    int64_t i = 1;
    while (i < cut && probs_[i] >= threshold) ++i;
    cut = i;
  }
  double kept_mass = 0.0;
  for (int64_t i = 0; i < cut; ++i) kept_mass += probs_[i];
  double target = UniformFromSeed(seed, draw_index) * kept_mass;
  for (int64_t i = 0; i < cut; ++i) {
    target -= probs_[i];
    if (target < 0.0) return order_[i];
  }
  return order_[cut - 1];
}

void Sampler::FillLogprobs(const float* logits, int n, int32_t chosen, SampledToken* out) {
  const float max_logit = *std::max_element(logits, logits + vocab_size_);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab_size_; ++i) sum += std::exp(double(logits[i]) - max_logit);
  const double log_normaliser = max_logit + std::log(sum);
  out->logprob = static_cast<float>(logits[chosen] - log_normaliser);
  if (n <= 0) return;
  order_.resize(vocab_size_);
  std::iota(order_.begin(), order_.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), better);
  for (int i = 0; i < n; ++i) {
    out->top.push_back({order_[i], static_cast<float>(logits[order_[i]] - log_normaliser)});
  }
}

SampledToken Sampler::Sample(const float* logits, const SamplingParams& params,
                             const std::vector<int32_t>& prompt, const std::vector<int32_t>& output,
                             uint64_t seed) {
  work_.assign(logits, logits + vocab_size_);
  ApplyPenalties(params, prompt, output);
  SampledToken result;
  if (params.temperature == 0.0f) {
    result.token = static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());
  } else {
    result.token = Draw(params, seed, output.size());
  }
  // Log-probabilities are those of the model's own distribution (raw logits).
  FillLogprobs(logits, params.logprobs, result.token, &result);
  return result;
}

}  // namespace ropewire::model
