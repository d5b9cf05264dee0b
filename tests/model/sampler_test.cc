// The sampler: greedy, temperature, top-k, top-p, min-p, penalties, seeds and log-probabilities.
#include <cmath>
#include <map>

#include "gtest/gtest.h"
#include "model/sampler.h"

namespace ropewire::model {
namespace {

const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 3.0f, -2.0f, 1.5f};

std::vector<double> Softmax(const std::vector<float>& x, double temperature) {
  std::vector<double> p(x.size());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp(x[i] / temperature);
  for (double& v : p) v /= sum;
  return p;
}

// Frequencies over many draws: output index i stands for a different draw of the same seed.
std::map<int32_t, double> Frequencies(const SamplingParams& params, int draws = 20000) {
  Sampler sampler(static_cast<int64_t>(kLogits.size()));
  std::map<int32_t, double> counts;
  std::vector<int32_t> output;
  for (int i = 0; i < draws; ++i) {
    output.resize(i);  // the draw index is the number of output tokens so far
    counts[sampler.Sample(kLogits.data(), params, {}, output, 42).token] += 1.0 / draws;
  }
  return counts;
}

TEST(Sampler, GreedyTakesTheArgmax) {
  Sampler sampler(8);
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(sampler.Sample(kLogits.data(), p, {}, {}, 1).token, 5);
}

TEST(Sampler, TemperatureSamplingFollowsTheSoftmax) {
  SamplingParams p;
  p.temperature = 0.7f;
  const auto expected = Softmax(kLogits, 0.7);
  const auto freq = Frequencies(p);
  for (size_t t = 0; t < kLogits.size(); ++t)
    EXPECT_NEAR(freq.count(t) ? freq.at(t) : 0.0, expected[t], 0.012) << t;
}

TEST(Sampler, TopKKeepsTheKBest) {
  SamplingParams p;
  p.top_k = 2;
  const auto freq = Frequencies(p);
  EXPECT_EQ(freq.size(), 2u);
  EXPECT_NEAR(freq.at(5), std::exp(3.0) / (std::exp(3.0) + std::exp(2.0)), 0.012);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  const auto probs = Softmax(kLogits, 1.0);  // sorted: 5 (0.47), 0 (0.17), 7 (0.10), ...
  SamplingParams p;
  p.top_p = static_cast<float>(probs[5] + probs[0] - 0.01);
  const auto freq = Frequencies(p);
  EXPECT_EQ(freq.size(), 2u);
  EXPECT_TRUE(freq.count(5) && freq.count(0));
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  SamplingParams p;
  p.min_p = 0.3f;  // keeps tokens with p >= 0.3 * p(5): logits >= 3 + ln 0.3 = 1.796
  const auto freq = Frequencies(p);
  EXPECT_EQ(freq.size(), 2u);
  EXPECT_TRUE(freq.count(5) && freq.count(0));
}

TEST(Sampler, SeedsMakeDrawsReproducible) {
  Sampler a(8), b(8);
  SamplingParams p;
  p.top_p = 0.9f;
  std::vector<int32_t> out_a, out_b;
  for (int i = 0; i < 50; ++i) {
    out_a.push_back(a.Sample(kLogits.data(), p, {}, out_a, 7).token);
    out_b.push_back(b.Sample(kLogits.data(), p, {}, out_b, 7).token);
  }
  EXPECT_EQ(out_a, out_b);
  std::vector<int32_t> other;
  for (int i = 0; i < 50; ++i) other.push_back(a.Sample(kLogits.data(), p, {}, other, 8).token);
  EXPECT_NE(other, out_a);
}

TEST(Sampler, Penalties) {
  Sampler sampler(8);
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;  // token 5: 3.0 -> 1.5, below token 0's 2.0
  EXPECT_EQ(sampler.Sample(kLogits.data(), p, {5}, {}, 1).token, 0);
  SamplingParams f;
  f.temperature = 0;
  f.frequency_penalty = 0.6f;  // token 5 twice in the output: 3.0 - 1.2 = 1.8 < 2.0
  EXPECT_EQ(sampler.Sample(kLogits.data(), f, {}, {5, 5}, 1).token, 0);
  f.frequency_penalty = 0;
  f.presence_penalty = 1.5f;  // once, whatever the count: 3.0 - 1.5 = 1.5 < 2.0
  EXPECT_EQ(sampler.Sample(kLogits.data(), f, {}, {5, 5, 5}, 1).token, 0);
}

TEST(Sampler, LogprobsOfTheModelDistribution) {
  Sampler sampler(8);
  SamplingParams p;
  p.temperature = 0;
  p.logprobs = 3;
  const SampledToken t = sampler.Sample(kLogits.data(), p, {}, {}, 1);
  const auto probs = Softmax(kLogits, 1.0);
  EXPECT_NEAR(t.logprob, std::log(probs[5]), 1e-5);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].token, 5);
  EXPECT_EQ(t.top[1].token, 0);
  EXPECT_EQ(t.top[2].token, 7);
  EXPECT_NEAR(t.top[2].logprob, std::log(probs[7]), 1e-5);
}

TEST(Sampler, InvalidParametersAreNamed) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_NE(std::string(p.Validate(8).message()).find("top_p"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(std::string(p.Validate(8).message()).find("temperature"), std::string::npos);
  p = {};
  p.logprobs = 9;
  EXPECT_FALSE(p.Validate(8).ok());
  EXPECT_TRUE(SamplingParams{}.Validate(8).ok());
}

}  // namespace
}  // namespace ropewire::model
