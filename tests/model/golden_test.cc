// Golden tests: every model fixture against transformers' own f32 outputs (tools/make_fixtures.py),
// through the paged KV cache, one sequence or many at once, whole prompts or chunks.
//
// Length-dependent RoPE (dynamic NTK, LongRoPE) rotates every key and query of a step with the
// table its sequence's current length selects (DESIGN.md decision 1), which is what a full
// forward over exactly the tokens cached so far computes. Their fixtures therefore also hold
// `prefix_logits`: the last-position logits of a full forward over each prompt prefix. A row
// computed in a step that ends at cache length e is compared with the full forward over e
// tokens: `logits` when e is the whole prompt, `prefix_logits` when the row is the step's last.
// That holds while the sequence's table has not changed since its first step: the K/V of layers
// after the first derive from attention outputs of earlier steps (kernels/rope_table.h,
// RopeTableKey). Generation past a table change therefore recomputes the sequence in one step
// when its table changes, the protocol a scheduler follows to stay exact for these encodings.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "kernels/rope_table.h"
#include "model/executor.h"
#include "model/greedy.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

using ropewire::testing::AllModelFixtures;
using ropewire::testing::FixtureDir;
using ropewire::testing::GoldenCase;
using ropewire::testing::LoadGolden;
using ropewire::testing::RelativeError;

constexpr double kLogitTolerance = 1e-4;

// The golden fields only length-dependent fixtures have.
struct LengthDependentGolden {
  bool enabled = false;
  std::vector<std::vector<std::vector<float>>> prefix_logits;  // [case][prompt position][vocab]
};

LengthDependentGolden LoadLengthDependent(const std::string& name) {
  std::ifstream in(FixtureDir(name) + "/golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  LengthDependentGolden out;
  out.enabled = golden.value("length_dependent_rope", false);
  if (!out.enabled) return out;
  for (const auto& c : golden.at("cases")) {
    out.prefix_logits.push_back(c.at("prefix_logits").get<std::vector<std::vector<float>>>());
  }
  return out;
}

// The reference row for prompt position `pos` of case `index` computed in a step that ended at
// cache length `step_end` of a sequence whose first step ended at `first_end`, or null when no
// full forward of the fixture computes that row.
const std::vector<float>* ReferenceRow(const std::vector<GoldenCase>& cases,
                                       const LengthDependentGolden& extra,
                                       const kernels::RopeSpec& rope, size_t index, size_t pos,
                                       size_t first_end, size_t step_end) {
  const GoldenCase& c = cases[index];
  if (!extra.enabled) return &c.logits[pos];
  if (kernels::RopeTableKey(rope, first_end) != kernels::RopeTableKey(rope, step_end))
    return nullptr;
  if (step_end == c.prompt.size()) return &c.logits[pos];
  if (pos + 1 == step_end) return &extra.prefix_logits[index][pos];
  return nullptr;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ExecutorOptions options;
    options.num_blocks = 256;
    options.block_size = 4;  // small blocks: every prompt spans several, some partially filled
    // Weights exactly as stored (16-bit fixtures stay 16-bit), arithmetic and cache in f32: the
    // reference's own computation. (16-bit storage is compared in weight_formats_test.cc.)
    options.kv_cache_dtype = "f32";
    auto runner = LoadExecutor(FixtureDir(GetParam()), options);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = std::move(*runner);
    cases_ = LoadGolden(GetParam());
    extra_ = LoadLengthDependent(GetParam());
    vocab_ = runner_->config().vocab_size;
  }

  // `chunk`: prompt tokens per step (0: the whole prompt in one step).
  void ExpectPromptLogits(size_t index, const std::vector<float>& logits, size_t chunk,
                          const std::string& what) {
    const GoldenCase& c = cases_[index];
    ASSERT_EQ(logits.size(), c.prompt.size() * vocab_) << what;
    for (size_t pos = 0; pos < c.prompt.size(); ++pos) {
      const size_t step_end =
          chunk == 0 ? c.prompt.size() : std::min(c.prompt.size(), (pos / chunk + 1) * chunk);
      const size_t first_end = chunk == 0 ? c.prompt.size() : std::min(c.prompt.size(), chunk);
      const std::vector<float>* expected =
          ReferenceRow(cases_, extra_, Rope(), index, pos, first_end, step_end);
      if (expected == nullptr) continue;
      ++rows_compared_;
      const double err = RelativeError(logits.data() + pos * vocab_, *expected);
      worst_ = std::max(worst_, err);
      EXPECT_LE(err, kLogitTolerance) << what << ": position " << pos;
    }
  }

  const kernels::RopeSpec& Rope() const { return runner_->config().position.rope; }

  std::unique_ptr<StepExecutor> runner_;
  std::vector<GoldenCase> cases_;
  LengthDependentGolden extra_;
  double worst_ = 0.0;     // largest relative error seen by ExpectPromptLogits
  int rows_compared_ = 0;  // prompt rows ExpectPromptLogits checked against a reference
  int64_t vocab_ = 0;
};

TEST_P(GoldenTest, WholePromptLogitsMatchReference) {
  for (size_t i = 0; i < cases_.size(); ++i) {
    GreedyOptions options;
    options.max_tokens = 0;
    options.keep_prompt_logits = true;
    auto result = GenerateGreedy(*runner_, cases_[i].prompt, options);
    ASSERT_TRUE(result.ok()) << result.status();
    ExpectPromptLogits(i, result->prompt_logits, 0, "whole prompt");
  }
  EXPECT_GT(rows_compared_, 0) << "no logits row of the fixture had a reference";
  RecordProperty("worst_relative_error", std::to_string(worst_));
  std::printf("%s: worst relative error %.3g\n", GetParam().c_str(), worst_);
}

TEST_P(GoldenTest, ChunkedPrefillGivesTheSameLogits) {
  for (int chunk : {1, 3, 7}) {
    for (size_t i = 0; i < cases_.size(); ++i) {
      GreedyOptions options;
      options.max_tokens = 0;
      options.prefill_chunk = chunk;
      options.keep_prompt_logits = true;
      auto result = GenerateGreedy(*runner_, cases_[i].prompt, options);
      ASSERT_TRUE(result.ok()) << result.status();
      ExpectPromptLogits(i, result->prompt_logits, chunk, "chunk " + std::to_string(chunk));
    }
  }
  EXPECT_GT(rows_compared_, 0) << "no logits row of the fixture had a reference";
}

// Greedy decoding of one sequence that recomputes all its tokens in one step whenever its RoPE
// table changes (see the top of the file).
std::vector<int32_t> GreedyWithRecompute(StepExecutor& runner, const std::vector<int32_t>& prompt,
                                         int max_tokens) {
  const int64_t vocab = runner.config().vocab_size;
  std::vector<int32_t> tokens = prompt;
  std::vector<int32_t> blocks((prompt.size() + max_tokens) / runner.block_size() + 1);
  std::iota(blocks.begin(), blocks.end(), 0);
  std::vector<int32_t> generated;
  std::vector<float> logits;
  int32_t computed = 0;
  int64_t cache_key = -1;
  while (static_cast<int>(generated.size()) < max_tokens) {
    const int64_t key = runner.PositionTableKey(static_cast<int64_t>(tokens.size()));
    if (key != cache_key) computed = 0;  // recompute every token with the new table
    cache_key = key;
    StepPlan plan;
    plan.AddSequence(0, std::vector<int32_t>(tokens.begin() + computed, tokens.end()), computed, 0,
                     blocks, /*want_logits=*/true);
    plan.Finalize(runner.block_size());
    EXPECT_TRUE(runner.Execute(plan, &logits).ok());
    computed = static_cast<int32_t>(tokens.size());
    generated.push_back(ArgMax(logits.data(), vocab));
    tokens.push_back(generated.back());
  }
  return generated;
}

TEST_P(GoldenTest, GreedyContinuationMatchesReference) {
  if (extra_.enabled) {
    for (const auto& c : cases_) {
      EXPECT_EQ(GreedyWithRecompute(*runner_, c.prompt, static_cast<int>(c.greedy.size())),
                c.greedy);
    }
    return;
  }
  ASSERT_FALSE(cases_.empty());
  for (const auto& c : cases_) {
    ASSERT_FALSE(c.greedy.empty());
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
void RunMixedBatch(StepExecutor& runner, const std::vector<GoldenCase>& cases,
                   const LengthDependentGolden& extra, int chunk, uint32_t seed) {
  const int64_t vocab = runner.config().vocab_size;
  const int bs = runner.block_size();
  std::vector<int32_t> free_blocks(runner.num_blocks());
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), std::mt19937(seed));

  struct Seq {
    const GoldenCase* golden;
    std::vector<int32_t> tokens;  // prompt then generated
    std::vector<int32_t> blocks;
    int computed = 0;  // tokens already in the cache
    int start_step = 0;
    std::vector<float> prompt_logits;
    // Per prompt row: (first_end, step_end): the cache length after the first step since the
    // cache was (re)built, and after the row's own step.
    std::vector<std::pair<size_t, size_t>> row_ends;
    size_t cache_first_end = 0;
    int64_t cache_key = -1;  // RoPE table key of that first step
  };
  const kernels::RopeSpec& rope = runner.config().position.rope;
  std::vector<Seq> seqs;
  for (size_t i = 0; i < cases.size(); ++i) {
    seqs.push_back({&cases[i], cases[i].prompt, {}, 0, static_cast<int>(i), {}, {}, 0, -1});
  }
  std::vector<float> logits;
  for (int step = 0; step < 200; ++step) {
    StepPlan plan;
    std::vector<std::pair<Seq*, int>> rows_of;  // (sequence, number of logits rows it asked for)
    for (auto& s : seqs) {
      const size_t target = s.golden->prompt.size() + s.golden->greedy.size();
      if (step < s.start_step || s.tokens.size() == target) continue;  // not arrived or done
      const int prompt_len = static_cast<int>(s.golden->prompt.size());
      const int old_computed = s.computed;
      const bool in_prompt = s.computed < prompt_len;
      const int end = in_prompt ? s.computed + std::min(chunk, prompt_len - s.computed)
                                : static_cast<int>(s.tokens.size());
      // A length-dependent encoding whose table for `end` is not the one the cache was built
      // with recomputes every token up to `end` in this step.
      if (extra.enabled && s.computed > 0 && kernels::RopeTableKey(rope, end) != s.cache_key) {
        s.computed = 0;
      }
      if (s.computed == 0) {
        s.cache_key = kernels::RopeTableKey(rope, end);
        s.cache_first_end = static_cast<size_t>(end);
      }
      const int n = end - s.computed;
      while (int(s.blocks.size()) * bs < end) {
        s.blocks.push_back(free_blocks.back());
        free_blocks.pop_back();
      }
      std::vector<int32_t> piece(s.tokens.begin() + s.computed, s.tokens.begin() + end);
      const int first_row = plan.num_tokens();
      plan.AddSequence(static_cast<int64_t>(&s - seqs.data()), piece, s.computed, 0, s.blocks,
                       false);
      const int first_wanted = in_prompt ? old_computed - s.computed : n - 1;
      for (int r = first_wanted; r < n; ++r) plan.logits_rows.push_back(first_row + r);
      rows_of.push_back({&s, n - first_wanted});
      s.computed = end;
    }
    if (rows_of.empty()) break;
    plan.Finalize(runner.block_size());
    ASSERT_TRUE(runner.Execute(plan, &logits).ok());
    size_t row = 0;
    for (auto& [s, rows] : rows_of) {
      const int prompt_len = static_cast<int>(s->golden->prompt.size());
      const bool was_prompt = s->prompt_logits.size() < size_t(prompt_len) * vocab;
      if (was_prompt) {
        s->prompt_logits.insert(s->prompt_logits.end(), logits.begin() + row * vocab,
                                logits.begin() + (row + rows) * vocab);
        s->row_ends.insert(s->row_ends.end(), rows,
                           {s->cache_first_end, static_cast<size_t>(s->computed)});
      }
      const float* last = logits.data() + (row + rows - 1) * vocab;
      const bool prompt_done = s->computed >= prompt_len;
      if (prompt_done && s->tokens.size() < s->golden->prompt.size() + s->golden->greedy.size()) {
        s->tokens.push_back(ArgMax(last, vocab));
      }
      row += rows;
    }
  }
  int rows_compared = 0;
  for (const auto& s : seqs) {
    const GoldenCase& c = *s.golden;
    const size_t index = static_cast<size_t>(s.golden - cases.data());
    std::vector<int32_t> generated(s.tokens.begin() + c.prompt.size(), s.tokens.end());
    EXPECT_EQ(generated, c.greedy) << "chunk " << chunk << ", prompt of " << c.prompt.size();
    ASSERT_EQ(s.prompt_logits.size(), c.prompt.size() * vocab);
    for (size_t pos = 0; pos < c.prompt.size(); ++pos) {
      const std::vector<float>* expected = ReferenceRow(
          cases, extra, rope, index, pos, s.row_ends[pos].first, s.row_ends[pos].second);
      if (expected == nullptr) continue;
      ++rows_compared;
      EXPECT_LE(RelativeError(s.prompt_logits.data() + pos * vocab, *expected), kLogitTolerance)
          << "chunk " << chunk << ", position " << pos;
    }
  }
  EXPECT_GT(rows_compared, 0) << "chunk " << chunk << ": no logits row had a reference";
}

TEST_P(GoldenTest, SequencesBatchedTogetherMatchReference) {
  for (int chunk : {1, 3, 7, 512}) RunMixedBatch(*runner_, cases_, extra_, chunk, 7 + chunk);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest, ::testing::ValuesIn(AllModelFixtures()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ropewire::model
