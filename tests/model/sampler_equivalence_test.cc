// The vectorised sampler against the scalar one ropewire used before (kept here as the
// reference): on large vocabularies, for every truncation mode, the same seed draws the same
// token. The scalar sampler sums probabilities with libm's exp over the whole vocabulary; the
// vectorised one sums a polynomial exp (relative error < 3e-7) where a sum spans the vocabulary,
// so a draw may differ only where the uniform falls within ~1e-7 of a boundary between two
// tokens. The seeds are fixed; none of these draws does.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "model/sampler.h"
#include "model/vocab_scan.h"

namespace ropewire::model {
namespace {

// The scalar draw: candidates best first (ties by id), top-k, then top-p over the kept mass.
int32_t ReferenceDraw(const std::vector<float>& x, const SamplingParams& params, double u) {
  const int64_t n = static_cast<int64_t>(x.size());
  const float max_logit = *std::max_element(x.begin(), x.end());
  const bool truncates = params.top_k > 0 || params.top_p < 1.0f || params.min_p > 0.0f;
  if (!truncates) {
    std::vector<double> probs(n);
    double total = 0.0;
    for (int64_t i = 0; i < n; ++i)
      total += probs[i] = std::exp((x[i] - max_logit) / params.temperature);
    double target = u * total;
    for (int64_t i = 0; i < n; ++i) {
      target -= probs[i];
      if (target < 0.0) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(n - 1);
  }
  auto better = [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (params.min_p > 0.0f) {
    const float cutoff = max_logit + params.temperature * std::log(params.min_p);
    order.erase(
        std::remove_if(order.begin(), order.end(), [&](int32_t t) { return x[t] < cutoff; }),
        order.end());
  }
  if (params.top_k > 0 && params.top_k < static_cast<int64_t>(order.size())) {
    std::partial_sort(order.begin(), order.begin() + params.top_k, order.end(), better);
    order.resize(params.top_k);
  }
  double total = 0.0;
  for (int32_t t : order) total += std::exp((x[t] - max_logit) / params.temperature);
  std::sort(order.begin(), order.end(), better);
  std::vector<double> probs;
  double mass = 0.0;
  for (int32_t t : order) {
    probs.push_back(std::exp((x[t] - max_logit) / params.temperature));
    mass += probs.back();
    if (params.top_p < 1.0f && mass / total >= params.top_p) break;
  }
  double kept = 0.0;
  for (double p : probs) kept += p;
  double target = u * kept;
  for (size_t i = 0; i < probs.size(); ++i) {
    target -= probs[i];
    if (target < 0.0) return order[i];
  }
  return order[probs.size() - 1];
}

// Logits shaped like a language model's: a broad normal background and a few strong tokens.
std::vector<float> ModelLikeRow(int64_t vocab, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> background(0.0f, spread);
  std::vector<float> row(vocab);
  for (float& v : row) v = background(rng);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  for (int i = 0; i < 20; ++i) row[pick(rng)] += 8.0f + i * 0.5f;
  return row;
}

TEST(SamplerEquivalence, SeededDrawsEqualTheScalarSampler) {
  std::vector<SamplingParams> modes(7);
  modes[0].temperature = 1.0f;
  modes[1].temperature = 0.7f, modes[1].top_p = 0.9f;
  modes[2].top_p = 0.95f;
  modes[3].top_k = 50;
  modes[4].top_k = 40, modes[4].top_p = 0.8f;
  modes[5].min_p = 0.05f;
  modes[6].temperature = 1.3f, modes[6].min_p = 0.02f, modes[6].top_p = 0.9f;
  int compared = 0;
  for (int64_t vocab : {1000, 32000, 128256}) {
    for (float spread : {1.0f, 3.0f}) {
      const std::vector<float> row = ModelLikeRow(vocab, static_cast<uint32_t>(vocab), spread);
      Sampler sampler(vocab);
      for (size_t m = 0; m < modes.size(); ++m) {
        std::vector<int32_t> output;
        for (int draw = 0; draw < 40; ++draw) {
          const uint64_t seed = 1000 + m;
          const int32_t expected =
              ReferenceDraw(row, modes[m], UniformFromSeed(seed, output.size()));
          const int32_t actual = sampler.Sample(row.data(), modes[m], {}, output, seed).token;
          ASSERT_EQ(actual, expected)
              << "vocab " << vocab << " spread " << spread << " mode " << m << " draw " << draw;
          output.push_back(actual);
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 3 * 2 * 7 * 40);
}

TEST(VocabScan, PolynomialExpIsWithin3e7OfLibm) {
  std::vector<float> x(4096);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -80.0f * static_cast<float>(i) / x.size();
  std::vector<float> e(x.size());
  ExpRange(x.data(), 0, x.size(), 0.0f, 1.0f, e.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double expected = std::exp(double(x[i]));
    EXPECT_NEAR(e[i], expected, 3e-7 * expected) << x[i];
  }
}

TEST(VocabScan, MaxGatherAndArgMaxAgreeWithPlainLoops) {
  const std::vector<float> row = ModelLikeRow(10007, 3, 2.0f);  // not a multiple of a chunk
  std::vector<float> chunk_max(ScanChunks(row.size())), chunk_sum(chunk_max.size());
  std::vector<double> chunk_mass(chunk_max.size());
  const float max = ScanRow(row.data(), row.size(), 1.0f, chunk_max.data(), chunk_sum.data());
  EXPECT_EQ(max, *std::max_element(row.begin(), row.end()));
  EXPECT_EQ(ArgMaxOf(row.data(), row.size()),
            std::max_element(row.begin(), row.end()) - row.begin());
  std::vector<int32_t> ids;
  GatherAtLeast(row.data(), row.size(), chunk_max.data(), 4.0f, &ids);
  std::vector<int32_t> expected;
  for (size_t i = 0; i < row.size(); ++i)
    if (row[i] >= 4.0f) expected.push_back(static_cast<int32_t>(i));
  EXPECT_EQ(ids, expected);
  EXPECT_FALSE(ids.empty());
  double sum = 0, above_one = 0;
  for (float v : row) {
    sum += std::exp(double(v) - max);
    if (v >= 1.0f) above_one += std::exp(double(v) - max);
  }
  EXPECT_NEAR(SumExp(row.data(), row.size(), max, 1.0f, 1.0f), above_one, 1e-6 * above_one);
  EXPECT_NEAR(ChunkMasses(chunk_max.data(), chunk_sum.data(), chunk_max.size(), max, 1.0f,
                          chunk_mass.data()),
              sum, 1e-6 * sum);
  for (size_t c = 0; c < chunk_max.size(); ++c) {
    const auto first = row.begin() + c * kScanChunk;
    const auto last = row.begin() + std::min(row.size(), (c + 1) * kScanChunk);
    EXPECT_EQ(chunk_max[c], *std::max_element(first, last)) << c;
  }
}

}  // namespace
}  // namespace ropewire::model
