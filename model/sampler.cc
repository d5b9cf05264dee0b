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
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    return Invalid("temperature", ">= 0", temperature);
  if (top_k < 0) return Invalid("top_k", ">= 0 (0 disables it)", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) return Invalid("top_p", "in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return Invalid("min_p", "in [0, 1]", min_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    return Invalid("repetition_penalty", "> 0", repetition_penalty);
  }
  if (!(std::abs(presence_penalty) <= 2.0f))
    return Invalid("presence_penalty", "in [-2, 2]", presence_penalty);
  if (!(std::abs(frequency_penalty) <= 2.0f))
    return Invalid("frequency_penalty", "in [-2, 2]", frequency_penalty);
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
  const float max_logit = *std::max_element(work_.begin(), work_.end());
  const double u = UniformFromSeed(seed, draw_index);
  const bool truncates = params.top_k > 0 || params.top_p < 1.0f || params.min_p > 0.0f;
  if (!truncates) {
    // Plain temperature sampling: one linear pass, candidates in token-id order.
    probs_.resize(vocab_size_);
    double total = 0.0;
    for (int64_t i = 0; i < vocab_size_; ++i)
      total += probs_[i] = std::exp((work_[i] - max_logit) / params.temperature);
    double target = u * total;
    for (int64_t i = 0; i < vocab_size_; ++i) {
      target -= probs_[i];
      if (target < 0.0) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(vocab_size_ - 1);
  }
  // Candidates best first (ties by token id, so the order is deterministic). Only as many are
  // sorted as top-k, top-p and min-p can keep: a small prefix usually holds all the mass.
  auto better = [&](int32_t a, int32_t b) {
    return work_[a] > work_[b] || (work_[a] == work_[b] && a < b);
  };
  order_.resize(vocab_size_);
  std::iota(order_.begin(), order_.end(), 0);
  if (params.min_p > 0.0f) {  // drop tokens below min_p × the best probability up front
    const float cutoff = max_logit + params.temperature * std::log(params.min_p);
    order_.erase(
        std::remove_if(order_.begin(), order_.end(), [&](int32_t t) { return work_[t] < cutoff; }),
        order_.end());
  }
  int64_t keep = static_cast<int64_t>(order_.size());
  double total = 0.0;  // mass top-p is a fraction of: every candidate, or the top-k
  if (params.top_k > 0 && params.top_k < keep) {
    keep = params.top_k;
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), better);
    order_.resize(keep);
  }
  for (int32_t t : order_) total += std::exp((work_[t] - max_logit) / params.temperature);
  for (int64_t sorted = std::min<int64_t>(keep, 64);;
       sorted = std::min<int64_t>(keep, sorted * 16)) {
    std::partial_sort(order_.begin(), order_.begin() + sorted, order_.end(), better);
    probs_.resize(sorted);
    double mass = 0.0;
    int64_t cut = sorted;
    for (int64_t i = 0; i < sorted; ++i) {
      probs_[i] = std::exp((work_[order_[i]] - max_logit) / params.temperature);
      mass += probs_[i];
      if (params.top_p < 1.0f && mass / total >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    if (cut < sorted || sorted == keep) {
      double kept = 0.0;
      for (int64_t i = 0; i < cut; ++i) kept += probs_[i];
      double target = u * kept;
      for (int64_t i = 0; i < cut; ++i) {
        target -= probs_[i];
        if (target < 0.0) return order_[i];
      }
      return order_[cut - 1];
    }
  }
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
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
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
    result.token =
        static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());
  } else {
    result.token = Draw(params, seed, output.size());
  }
  // Log-probabilities (of the model's own distribution, raw logits) only when asked for: they
  // cost a pass over the whole vocabulary.
  if (params.logprobs > 0) FillLogprobs(logits, params.logprobs, result.token, &result);
  return result;
}

}  // namespace ropewire::model
