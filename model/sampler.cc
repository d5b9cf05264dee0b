#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "model/vocab_scan.h"

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

const float* Sampler::ApplyPenalties(const float* logits, const SamplingParams& params,
                                     const std::vector<int32_t>& prompt,
                                     const std::vector<int32_t>& output) {
  const bool repetition = params.repetition_penalty != 1.0f;
  const bool additive = params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f;
  if (!repetition && !additive) return logits;  // the row is read where it lies
  work_.assign(logits, logits + vocab_size_);
  auto valid = [&](int32_t t) { return t >= 0 && t < vocab_size_; };
  if (repetition) {
    // Each distinct token of prompt and output is penalised once, as transformers does.
    touched_.clear();
    for (const auto* tokens : {&prompt, &output}) {
      for (int32_t t : *tokens)
        if (valid(t)) touched_.push_back(t);
    }
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (int32_t t : touched_) {
      float& x = work_[t];
      if (std::isnan(x)) continue;
      x = x > 0 ? x / params.repetition_penalty : x * params.repetition_penalty;
    }
  }
  if (additive) {
    touched_.clear();
    for (int32_t t : output)
      if (valid(t)) touched_.push_back(t);
    std::sort(touched_.begin(), touched_.end());
    for (size_t i = 0; i < touched_.size();) {  // runs of one token: its count
      size_t j = i;
      while (j < touched_.size() && touched_[j] == touched_[i]) ++j;
      work_[touched_[i]] -=
          params.frequency_penalty * static_cast<float>(j - i) + params.presence_penalty;
      i = j;
    }
  }
  return work_.data();
}

int32_t Sampler::DrawFromAll(const float* x, float max_logit, float inv_temperature, double u) {
  // Plain temperature sampling: the inverse CDF over candidates in token-id order, found chunk
  // by chunk from the chunk masses, then within the one chunk that holds it.
  const int64_t chunks = ScanChunks(vocab_size_);
  chunk_mass_.resize(chunks);
  const double total = ChunkMasses(chunk_max_.data(), chunk_sum_.data(), chunks, max_logit,
                                   inv_temperature, chunk_mass_.data());
  double target = u * total;
  int64_t chunk = chunks - 1;
  for (int64_t c = 0; c < chunks; ++c) {
    if (target < chunk_mass_[c]) {
      chunk = c;
      break;
    }
    target -= chunk_mass_[c];
  }
  // Rounding can leave the target past the end: then the last chunk with any mass.
  while (chunk > 0 && chunk_mass_[chunk] == 0.0) --chunk;
  const int64_t begin = chunk * kScanChunk, end = std::min(vocab_size_, begin + kScanChunk);
  probs_.resize(kScanChunk);
  ExpRange(x, begin, end, max_logit, inv_temperature, probs_.data());
  int64_t last = begin;
  for (int64_t i = begin; i < end; ++i) {
    if (probs_[i - begin] == 0.0f) continue;
    last = i;
    target -= probs_[i - begin];
    if (target < 0.0) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(last);
}

// Gathers into order_ (token-id order) a set of candidates that is a best-first prefix of all of
// them and large enough for top-k and top-p to decide within it. For top-k: every logit at least
// the k-th largest chunk maximum (k chunks hold one such value each, so at least k are in). For
// top-p: logits within a spread of the best one, the spread doubled until the set holds the
// nucleus. Returns whether the set is every candidate (sums over it are then exact);
// total_estimate is the mass of every candidate.
bool Sampler::GatherCandidates(const float* x, const SamplingParams& params, float max_logit,
                               float cutoff, double total_estimate) {
  const int64_t chunks = ScanChunks(vocab_size_);
  if (params.top_k > 0) {
    float threshold = cutoff;
    if (params.top_k <= chunks) {
      scratch_.assign(chunk_max_.begin(), chunk_max_.end());
      std::nth_element(scratch_.begin(), scratch_.begin() + (params.top_k - 1), scratch_.end(),
                       std::greater<float>());
      threshold = std::max(cutoff, scratch_[params.top_k - 1]);
    }
    GatherAtLeast(x, vocab_size_, chunk_max_.data(), threshold, &order_);
    return threshold <= cutoff;
  }
  const float temperature = params.temperature;
  for (float spread = 4.0f * temperature;; spread *= 2.0f) {
    // Beyond 64 temperatures a logit's probability is below e^-64 of the best one's.
    const bool all = spread > 64.0f * temperature || params.top_p >= 1.0f;
    const float threshold = all ? cutoff : std::max(cutoff, max_logit - spread);
    GatherAtLeast(x, vocab_size_, chunk_max_.data(), threshold, &order_);
    if (threshold <= cutoff) return true;
    double mass = 0.0;
    for (int32_t t : order_) mass += std::exp((x[t] - max_logit) / temperature);
    // The estimate's error is far below this margin, so a set that passes holds the nucleus.
    if (mass >= params.top_p * total_estimate * (1.0 + 1e-5)) return false;
  }
}

int32_t Sampler::Draw(const float* x, const SamplingParams& params, uint64_t seed,
                      uint64_t draw_index) {
  const int64_t chunks = ScanChunks(vocab_size_);
  chunk_max_.resize(chunks);
  chunk_sum_.resize(chunks);
  const float inv_temperature = 1.0f / params.temperature;
  const float max_logit =
      ScanRow(x, vocab_size_, inv_temperature, chunk_max_.data(), chunk_sum_.data());
  const double u = UniformFromSeed(seed, draw_index);
  const bool truncates = params.top_k > 0 || params.top_p < 1.0f || params.min_p > 0.0f;
  if (!truncates) return DrawFromAll(x, max_logit, inv_temperature, u);

  // min-p drops tokens below min_p × the best probability up front.
  const float cutoff = params.min_p > 0.0f ? max_logit + params.temperature * std::log(params.min_p)
                                           : -std::numeric_limits<float>::infinity();
  double total_estimate = 0;  // of every candidate, for a nucleus of them all
  if (params.top_p < 1.0f && params.top_k == 0) {
    if (params.min_p > 0.0f) {
      total_estimate = SumExp(x, vocab_size_, max_logit, inv_temperature, cutoff);
    } else {
      chunk_mass_.resize(chunks);
      total_estimate = ChunkMasses(chunk_max_.data(), chunk_sum_.data(), chunks, max_logit,
                                   inv_temperature, chunk_mass_.data());
    }
  }
  const bool complete = GatherCandidates(x, params, max_logit, cutoff, total_estimate);

  // Candidates best first (ties by token id, so the order is deterministic). Only as many are
  // sorted as top-k and top-p can keep: a small prefix usually holds all the mass.
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  int64_t keep = static_cast<int64_t>(order_.size());
  double total = 0.0;  // mass top-p is a fraction of: every candidate, or the top-k
  if (params.top_k > 0 && params.top_k < keep) {
    keep = params.top_k;
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), better);
    order_.resize(keep);
  }
  if (complete || params.top_k > 0) {
    for (int32_t t : order_) total += std::exp((x[t] - max_logit) / params.temperature);
  } else {
    total = total_estimate;
  }
  for (int64_t sorted = std::min<int64_t>(keep, 64);;
       sorted = std::min<int64_t>(keep, sorted * 16)) {
    std::partial_sort(order_.begin(), order_.begin() + sorted, order_.end(), better);
    probs_.resize(sorted);
    double mass = 0.0;
    int64_t cut = sorted;
    for (int64_t i = 0; i < sorted; ++i) {
      probs_[i] = std::exp((x[order_[i]] - max_logit) / params.temperature);
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
  const int64_t chunks = ScanChunks(vocab_size_);
  chunk_max_.resize(chunks);
  chunk_sum_.resize(chunks);
  chunk_mass_.resize(chunks);
  const float max_logit = ScanRow(logits, vocab_size_, 1.0f, chunk_max_.data(), chunk_sum_.data());
  const double sum = ChunkMasses(chunk_max_.data(), chunk_sum_.data(), chunks, max_logit, 1.0f,
                                 chunk_mass_.data());
  const double log_normaliser = max_logit + std::log(sum);
  out->logprob = static_cast<float>(logits[chosen] - log_normaliser);
  if (n <= 0) return;
  // The n best are among the logits at least the n-th largest chunk maximum.
  float threshold = -std::numeric_limits<float>::infinity();
  if (n <= chunks) {
    scratch_.assign(chunk_max_.begin(), chunk_max_.end());
    std::nth_element(scratch_.begin(), scratch_.begin() + (n - 1), scratch_.end(),
                     std::greater<float>());
    threshold = scratch_[n - 1];
  }
  GatherAtLeast(logits, vocab_size_, chunk_max_.data(), threshold, &order_);
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
  const float* x = ApplyPenalties(logits, params, prompt, output);
  SampledToken result;
  if (params.temperature == 0.0f) {
    result.token = static_cast<int32_t>(ArgMaxOf(x, vocab_size_));
  } else {
    result.token = Draw(x, params, seed, output.size());
  }
  // Log-probabilities (of the model's own distribution, raw logits) only when asked for: they
  // cost a pass over the whole vocabulary.
  if (params.logprobs > 0) FillLogprobs(logits, params.logprobs, result.token, &result);
  return result;
}

}  // namespace ropewire::model
