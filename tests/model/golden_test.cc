// Golden tests: every model fixture against transformers' own f32 outputs (tools/make_fixtures.py),
// through the paged KV cache, one sequence or many at once, whole prompts or chunks.
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "model/greedy.h"
#include "model/model_runner.h"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ropewire::testing::AllModelFixtures;
using ropewire::testing::FixtureDir;
using ropewire::testing::GoldenCase;
using ropewire::testing::LoadGolden;
using ropewire::testing::RelativeError;

constexpr double kLogitTolerance = 1e-4;

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    RunnerOptions options;
    options.num_blocks = 256;
    options.block_size = 4;  // small blocks: every prompt spans several, some partially filled
    auto runner = ModelRunner::Load(FixtureDir(GetParam()), options);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = std::move(*runner);
    cases_ = LoadGolden(GetParam());
    vocab_ = runner_->config().vocab_size;
  }

  void ExpectPromptLogits(const GoldenCase& c, const std::vector<float>& logits,
                          const std::string& what) {
    ASSERT_EQ(logits.size(), c.prompt.size() * vocab_) << what;
    for (size_t pos = 0; pos < c.prompt.size(); ++pos) {
      const double err = RelativeError(logits.data() + pos * vocab_, c.logits[pos]);
      EXPECT_LE(err, kLogitTolerance) << what << ": position " << pos;
    }
  }

  std::unique_ptr<ModelRunner> runner_;
  std::vector<GoldenCase> cases_;
  int64_t vocab_ = 0;
};

TEST_P(GoldenTest, WholePromptLogitsMatchReference) {
  for (const auto& c : cases_) {
    GreedyOptions options;
    options.max_tokens = 0;
    options.keep_prompt_logits = true;
    auto result = GenerateGreedy(*runner_, c.prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectPromptLogits(c, result->prompt_logits, "whole prompt");
  }
}

TEST_P(GoldenTest, ChunkedPrefillGivesTheSameLogits) {
  for (int chunk : {1, 3, 7}) {
    for (const auto& c : cases_) {
      GreedyOptions options;
      options.max_tokens = 0;
      options.prefill_chunk = chunk;
      options.keep_prompt_logits = true;
      auto result = GenerateGreedy(*runner_, c.prompt, options);
      ASSERT_TRUE(result.ok()) << result.status();
      ExpectPromptLogits(c, result->prompt_logits, "chunk " + std::to_string(chunk));
    }
  }
}

TEST_P(GoldenTest, GreedyContinuationMatchesReference) {
  for (const auto& c : cases_) {
    GreedyOptions options;
    options.max_tokens = static_cast<int>(c.greedy.size());
    options.stop_at_eos = false;
    auto result = GenerateGreedy(*runner_, c.prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->tokens, c.greedy);
  }
}

// Drives several sequences through shared steps the way the scheduler does: staggered arrivals,
// prompts in chunks, decodes of running sequences beside prefill chunks of others, blocks taken
// from a shuffled free list. Checks every prompt logit and every greedy token.
void RunMixedBatch(ModelRunner& runner, const std::vector<GoldenCase>& cases, int chunk,
                   uint32_t seed) {
  const int64_t vocab = runner.config().vocab_size;
  const int bs = runner.block_size();
  std::vector<int32_t> free_blocks(runner.num_blocks());
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), std::mt19937(seed));

  struct Seq {
    const GoldenCase* golden;
    std::vector<int32_t> tokens;  // prompt then generated
    std::vector<int32_t> blocks;
    int computed = 0;             // tokens already in the cache
    int start_step = 0;
    std::vector<float> prompt_logits;
  };
  std::vector<Seq> seqs;
  for (size_t i = 0; i < cases.size(); ++i) {
    seqs.push_back({&cases[i], cases[i].prompt, {}, 0, static_cast<int>(i), {}});
  }
  std::vector<float> logits;
  for (int step = 0; step < 200; ++step) {
    StepPlan plan;
    std::vector<std::pair<Seq*, int>> rows_of;  // (sequence, number of logits rows it asked for)
    for (auto& s : seqs) {
      const size_t target = s.golden->prompt.size() + s.golden->greedy.size();
      if (step < s.start_step || s.tokens.size() == target) continue;  // not arrived or done
      const int prompt_len = static_cast<int>(s.golden->prompt.size());
      const int remaining = static_cast<int>(s.tokens.size()) - s.computed;
      const int n = s.computed < prompt_len ? std::min(chunk, prompt_len - s.computed) : remaining;
      while (int(s.blocks.size()) * bs < s.computed + n) {
        s.blocks.push_back(free_blocks.back());
        free_blocks.pop_back();
      }
      std::vector<int32_t> piece(s.tokens.begin() + s.computed, s.tokens.begin() + s.computed + n);
      const int first_row = plan.num_tokens();
      plan.AddSequence(static_cast<int64_t>(&s - seqs.data()), piece, s.computed, 0, s.blocks, false);
      const bool in_prompt = s.computed < prompt_len;
      const int rows = in_prompt ? n : 1;
      for (int r = in_prompt ? 0 : n - 1; r < n; ++r) plan.logits_rows.push_back(first_row + r);
      rows_of.push_back({&s, rows});
      s.computed += n;
    }
    if (rows_of.empty()) break;
    plan.Finalize();
    ASSERT_TRUE(runner.Execute(plan, &logits).ok());
    size_t row = 0;
    for (auto& [s, rows] : rows_of) {
      const int prompt_len = static_cast<int>(s->golden->prompt.size());
      const bool was_prompt = s->prompt_logits.size() < size_t(prompt_len) * vocab;
      if (was_prompt) {
        s->prompt_logits.insert(s->prompt_logits.end(), logits.begin() + row * vocab,
                                logits.begin() + (row + rows) * vocab);
      }
      const float* last = logits.data() + (row + rows - 1) * vocab;
      const bool prompt_done = s->computed >= prompt_len;
      if (prompt_done && s->tokens.size() < s->golden->prompt.size() + s->golden->greedy.size()) {
        s->tokens.push_back(ArgMax(last, vocab));
      }
      row += rows;
    }
  }
  for (const auto& s : seqs) {
    const GoldenCase& c = *s.golden;
    std::vector<int32_t> generated(s.tokens.begin() + c.prompt.size(), s.tokens.end());
    EXPECT_EQ(generated, c.greedy) << "chunk " << chunk << ", prompt of " << c.prompt.size();
    ASSERT_EQ(s.prompt_logits.size(), c.prompt.size() * vocab);
    for (size_t pos = 0; pos < c.prompt.size(); ++pos) {
      EXPECT_LE(RelativeError(s.prompt_logits.data() + pos * vocab, c.logits[pos]), kLogitTolerance)
          << "chunk " << chunk << ", position " << pos;
    }
  }
}

TEST_P(GoldenTest, SequencesBatchedTogetherMatchReference) {
  for (int chunk : {1, 3, 7, 512}) RunMixedBatch(*runner_, cases_, chunk, 7 + chunk);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(AllModelFixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ropewire::model
