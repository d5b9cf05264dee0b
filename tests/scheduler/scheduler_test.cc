// Scheduling policy with no model: what each step schedules under token, sequence and block
// limits; chunking; preemption order; admission; rejection; prefix caching; stop conditions.
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "scheduler/static_batch_scheduler.h"

namespace ropewire::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int32_t kEos = 2;

GenerationRequest Request(int prompt_len, int max_tokens, int32_t first_token = 10) {
  GenerationRequest r;
  r.prompt.resize(prompt_len);
  std::iota(r.prompt.begin(), r.prompt.end(), first_token);
  r.max_tokens = max_tokens;
  return r;
}

SchedulerConfig Config(int max_seqs, int max_tokens, int max_len = 256) {
  SchedulerConfig c;
  c.max_num_seqs = max_seqs;
  c.max_num_batched_tokens = max_tokens;
  c.max_model_len = max_len;
  c.eos_token_ids = {kEos};
  return c;
}

// (seq id, tokens) of each scheduled sequence.
std::vector<std::pair<int64_t, int>> Summary(const SchedulerOutput& out) {
  std::vector<std::pair<int64_t, int>> s;
  for (const auto& e : out.scheduled) s.push_back({e.seq_id, e.num_tokens});
  return s;
}

// Plans, commits with every sample = `token`, checks invariants.
std::vector<SequenceUpdate> Step(Scheduler& s, SchedulerOutput* out_copy = nullptr,
                                 int32_t token = 7) {
  SchedulerOutput out = s.Plan();
  EXPECT_TRUE(
      model::ValidateStepPlan(out.plan, 1000, s.blocks().num_blocks(), s.blocks().block_size())
          .ok());
  std::vector<model::SampledToken> samples(out.NumSamples(), model::SampledToken{token, 0.0f, {}});
  auto updates = s.Commit(out, samples);
  EXPECT_TRUE(s.CheckInvariants().ok()) << s.CheckInvariants();
  if (out_copy) *out_copy = std::move(out);
  return updates;
}

TEST(SchedulerPolicy, TokenBudgetChunksPromptsInArrivalOrder) {
  Scheduler s(Config(8, 10), 64, 4);
  const int64_t a = *s.Add(Request(8, 4), 0);
  const int64_t b = *s.Add(Request(8, 4), 0);
  SchedulerOutput out;
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 8}, std::pair{b, 2}));
  EXPECT_EQ(out.NumSamples(), 1);  // only A reached the end of its prompt
  Step(s, &out);
  // A decodes first (1 token), then B's remaining prompt.
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 1}, std::pair{b, 6}));
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 1}, std::pair{b, 1}));
}

TEST(SchedulerPolicy, SequenceLimit) {
  Scheduler s(Config(2, 100), 64, 4);
  const int64_t a = *s.Add(Request(3, 4), 0);
  const int64_t b = *s.Add(Request(3, 4), 0);
  const int64_t c = *s.Add(Request(3, 4), 0);
  SchedulerOutput out;
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 3}, std::pair{b, 3}));
  EXPECT_EQ(s.NumWaiting(), 1);
  s.Finish(a, FinishReason::kCancelled);
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{b, 1}, std::pair{c, 3}));
}

TEST(SchedulerPolicy, AdmitsOnlyWhenBlocksFitAndNeverOvertakes) {
  Scheduler s(Config(8, 100), 5, 4);                // 5 blocks of 4 tokens
  const int64_t a = *s.Add(Request(12, 4), 0);      // 3 blocks
  const int64_t b = *s.Add(Request(12, 4, 50), 0);  // 3 blocks: does not fit beside A
  const int64_t c = *s.Add(Request(2, 2, 90), 0);   // would fit, but must not overtake B
  SchedulerOutput out;
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 12}));
  EXPECT_EQ(s.blocks().NumFree(), 2);
  s.Finish(a, FinishReason::kCancelled);
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{b, 12}, std::pair{c, 2}));
}

TEST(SchedulerPolicy, PreemptsMostRecentlyAdmittedAndRecomputesIt) {
  // 6 blocks of 2 tokens; A and B each grow to 9 tokens (5 blocks), so they cannot both finish.
  Scheduler s(Config(8, 100, 64), 6, 2);
  const int64_t a = *s.Add(Request(3, 6, 10), 0);
  const int64_t b = *s.Add(Request(3, 6, 50), 0);
  SchedulerOutput out;
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 3}, std::pair{b, 3}));
  int steps = 1;
  while (out.preempted.empty() && steps < 20) {
    Step(s, &out);
    ++steps;
  }
  // A (admitted first) needed a block: B, admitted later, made room.
  EXPECT_THAT(out.preempted, ElementsAre(b));
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 1}));
  const Sequence* seq_b = s.Get(b);
  EXPECT_EQ(seq_b->state, SequenceState::kPreempted);
  EXPECT_EQ(seq_b->num_computed, 0);
  EXPECT_TRUE(seq_b->blocks.empty());
  const int b_tokens = seq_b->NumTokens();
  EXPECT_GT(b_tokens, 3);  // its generated tokens are kept and will be recomputed
  // A runs alone until it finishes; then B comes back and recomputes prompt + outputs at once.
  while (s.Get(a) != nullptr) {
    Step(s, &out);
    EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 1}));
  }
  Step(s, &out);
  // Readmitted: its released blocks were still cached, so only the rest is recomputed.
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].seq_id, b);
  EXPECT_EQ(out.scheduled[0].cached_tokens + out.scheduled[0].num_tokens, b_tokens);
  EXPECT_GT(out.scheduled[0].cached_tokens, 0);
  EXPECT_EQ(s.Get(b)->num_preemptions, 1);
}

TEST(SchedulerPolicy, MaxTokensOneFinishesAfterThePrompt) {
  Scheduler s(Config(8, 100, 64), 2, 2);
  const int64_t a = *s.Add(Request(3, 1), 0);
  auto updates = Step(s);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].reason, FinishReason::kLength);
  EXPECT_EQ(s.Get(a), nullptr);
  EXPECT_EQ(s.blocks().NumFree(), 2);
}

TEST(SchedulerPolicy, RejectsRequestsThatCanNeverRun) {
  Scheduler s(Config(8, 100, 32), 4, 4);  // 16 tokens of KV
  auto too_long = s.Add(Request(30, 8), 0);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_long.status().message(), HasSubstr("maximum model length of 32"));
  auto never_fits = s.Add(Request(10, 10), 0);
  EXPECT_EQ(never_fits.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(never_fits.status().message(), HasSubstr("can never fit"));
  EXPECT_EQ(s.Add(Request(0, 4), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Add(Request(4, 0), 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// CheckAdmissible is the one length and capacity check: Add refuses exactly what it refuses,
// with the same status, for each policy.
TEST(SchedulerPolicy, AddAppliesCheckAdmissible) {
  for (bool static_batching : {false, true}) {
    SchedulerConfig c = Config(8, 100, 32);
    c.static_batching = static_batching;
    auto s = Scheduler::Create(c, 4, 4);  // 16 tokens of KV
    for (const GenerationRequest& r :
         {Request(30, 8), Request(10, 10), Request(0, 4), Request(4, 0), Request(4, 4)}) {
      const absl::Status check = s->CheckAdmissible(r);
      const absl::StatusOr<int64_t> added = s->Add(r, 0);
      EXPECT_EQ(added.status(), check) << static_batching << " " << r.prompt.size();
    }
  }
  // Static batching reserves max_model_len for every member: 4 + 4 tokens fit in 16 tokens of
  // KV for continuous batching, but a static member's reservation of 32 never does.
  SchedulerConfig c = Config(8, 100, 32);
  EXPECT_TRUE(Scheduler::Create(c, 4, 4)->CheckAdmissible(Request(4, 4)).ok());
  c.static_batching = true;
  EXPECT_EQ(Scheduler::Create(c, 4, 4)->CheckAdmissible(Request(4, 4)).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Scheduler::Create(c, 8, 4)->CheckAdmissible(Request(4, 4)).ok());
}

TEST(SchedulerPolicy, QueueLimit) {
  SchedulerConfig c = Config(8, 100);
  c.max_waiting = 2;
  Scheduler s(c, 64, 4);
  ASSERT_TRUE(s.Add(Request(4, 4), 0).ok());
  ASSERT_TRUE(s.Add(Request(4, 4), 0).ok());
  auto third = s.Add(Request(4, 4), 0);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("queue is full"));
}

TEST(SchedulerPolicy, PrefixCacheSharesFullBlocks) {
  Scheduler s(Config(8, 100), 32, 4);
  const int64_t a = *s.Add(Request(10, 3), 0);  // blocks: [10..13] [14..17] [18,19]
  SchedulerOutput out;
  Step(s, &out);
  const int64_t b = *s.Add(Request(11, 3), 0);  // same first 10 tokens, then one more
  Step(s, &out);
  ASSERT_EQ(out.scheduled.size(), 2u);
  const ScheduledSequence& eb = out.scheduled[1];
  EXPECT_EQ(eb.seq_id, b);
  EXPECT_EQ(eb.cached_tokens, 8);  // two full blocks reused
  EXPECT_EQ(eb.num_tokens, 3);
  EXPECT_EQ(out.plan.BlockTable(1)[0], s.Get(a)->blocks[0]);
  EXPECT_EQ(s.blocks().RefCount(out.plan.BlockTable(1)[0]), 2);
  // After both finish, cached blocks stay in the pool (free, reusable) until evicted.
  s.Finish(a, FinishReason::kCancelled);
  s.Finish(b, FinishReason::kCancelled);
  EXPECT_EQ(s.blocks().NumFree(), 32);
  EXPECT_GE(s.blocks().NumCachedBlocks(), 2);
  const int64_t c = *s.Add(Request(9, 3), 0);
  Step(s, &out);
  EXPECT_EQ(out.scheduled[0].seq_id, c);
  EXPECT_EQ(out.scheduled[0].cached_tokens, 8);
}

TEST(SchedulerPolicy, PrefixCacheNeverCoversTheLastPromptToken) {
  Scheduler s(Config(8, 100), 32, 4);
  ASSERT_TRUE(s.Add(Request(8, 3), 0).ok());
  SchedulerOutput out;
  Step(s, &out);
  ASSERT_TRUE(s.Add(Request(8, 3), 0).ok());  // identical prompt of exactly two blocks
  Step(s, &out);
  EXPECT_EQ(out.scheduled.back().cached_tokens, 4);  // one block: the last token is recomputed
  EXPECT_EQ(out.scheduled.back().num_tokens, 4);
  EXPECT_TRUE(out.scheduled.back().samples);
}

TEST(SchedulerPolicy, StopConditions) {
  Scheduler s(Config(8, 100), 64, 4);
  GenerationRequest stop_ids = Request(3, 10);
  stop_ids.stop_token_ids = {7};
  stop_ids.ignore_eos = true;
  const int64_t a = *s.Add(stop_ids, 0);
  GenerationRequest ignore = Request(3, 3);
  ignore.ignore_eos = true;
  const int64_t b = *s.Add(ignore, 0);
  const int64_t c = *s.Add(Request(3, 10), 0);
  auto updates = Step(s, nullptr, kEos);  // everyone samples EOS
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_FALSE(updates[0].finished);  // A ignores EOS and stops on 7 only
  EXPECT_EQ(updates[1].seq_id, b);
  EXPECT_FALSE(updates[1].finished);  // B ignores EOS
  EXPECT_TRUE(updates[2].finished);
  EXPECT_EQ(updates[2].reason, FinishReason::kStopToken);
  updates = Step(s, nullptr, 7);
  EXPECT_EQ(updates[0].seq_id, a);
  EXPECT_TRUE(updates[0].finished);
  EXPECT_EQ(updates[0].reason, FinishReason::kStopToken);
  Step(s, nullptr, 5);
  EXPECT_EQ(s.Get(b), nullptr);  // max_tokens 3 reached
  (void)c;
}

TEST(SchedulerPolicy, AbortAndDeadlineFreeBlocks) {
  Scheduler s(Config(8, 100), 16, 4);
  GenerationRequest r = Request(9, 10);
  r.deadline = Clock::now() + std::chrono::hours(1);
  const int64_t a = *s.Add(r, 0);
  const int64_t b = *s.Add(Request(9, 10), 0);
  Step(s);
  EXPECT_EQ(s.blocks().NumFree(), 10);
  auto cancelled = s.Finish(b, FinishReason::kCancelled);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->reason, FinishReason::kCancelled);
  EXPECT_FALSE(s.Finish(b, FinishReason::kCancelled).has_value());  // already gone
  EXPECT_TRUE(s.ExpireDeadlines(Clock::now()).empty());
  auto expired = s.ExpireDeadlines(Clock::now() + std::chrono::hours(2));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].seq_id, a);
  EXPECT_EQ(expired[0].reason, FinishReason::kDeadline);
  EXPECT_EQ(s.blocks().NumFree(), 16);
  EXPECT_TRUE(s.CheckInvariants().ok());
}

TEST(SchedulerPolicy, StaticBatchingRunsFixedBatches) {
  SchedulerConfig c = Config(2, 100, 16);
  c.static_batching = true;
  StaticBatchScheduler s(c, 16, 4);  // 16 blocks; each member reserves 16 tokens = 4 blocks
  const int64_t a = *s.Add(Request(3, 1), 0);
  const int64_t b = *s.Add(Request(3, 5), 0);
  const int64_t d = *s.Add(Request(3, 2), 0);
  SchedulerOutput out;
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{a, 3}, std::pair{b, 3}));  // max 2 per batch
  EXPECT_EQ(s.blocks().NumFree(), 8);  // 4 reserved per member
  EXPECT_EQ(s.Get(a), nullptr);        // finished after one token...
  EXPECT_EQ(s.blocks().NumFree(), 8);  // ...but its reservation stays until the batch ends
  int b_steps = 0;
  while (s.Get(b) != nullptr) {
    Step(s, &out);
    ++b_steps;
    for (const auto& e : out.scheduled) EXPECT_NE(e.seq_id, d);  // no joining mid-batch
    // a's row goes on computing beside b, in its own reserved blocks, with no logits.
    ASSERT_EQ(out.padding_rows.size(), 1u);
    ASSERT_EQ(out.plan.num_seqs(), 2);
    EXPECT_EQ(out.plan.kv_len[1], 3 + b_steps);
    EXPECT_EQ(out.plan.logits_rows, std::vector<int32_t>{0});
    EXPECT_TRUE(s.CheckInvariants().ok());
  }
  EXPECT_EQ(b_steps, 4);
  Step(s, &out);
  EXPECT_THAT(Summary(out), ElementsAre(std::pair{d, 3}));
}

}  // namespace
}  // namespace ropewire::scheduler

namespace ropewire::scheduler {
namespace {

TEST(SchedulerContextShift, GenerationContinuesPastTheMaximumLength) {
  SchedulerConfig c = Config(8, 100, /*max_len=*/32);
  c.context_shift_sink_tokens = 4;
  c.enable_prefix_caching = false;
  Scheduler s(c, 16, 4);
  const int64_t a = *s.Add(Request(10, 80), 0);  // 90 tokens through a 32-token window
  std::vector<int32_t> kept_at_shift;
  int shifts_seen = 0;
  int steps = 0;
  while (s.Get(a) != nullptr && steps++ < 500) {
    const Sequence before = *s.Get(a);
    SchedulerOutput out = s.Plan();
    for (size_t i = 0; i < out.scheduled.size(); ++i) {
      // Writes go only after the cached tokens: a block kept by a shift is never rewritten.
      EXPECT_GE(out.scheduled[i].cache_start, before.num_computed);
      const auto table = out.plan.BlockTable(static_cast<int>(i));
      EXPECT_TRUE(std::equal(before.blocks.begin(), before.blocks.end(), table.begin()));
    }
    std::vector<model::SampledToken> samples(out.NumSamples(), model::SampledToken{7, 0.0f, {}});
    auto updates = s.Commit(out, samples);
    ASSERT_TRUE(s.CheckInvariants().ok()) << s.CheckInvariants();
    if (const Sequence* seq = s.Get(a)) {
      EXPECT_LE(seq->CacheLength(), 32);
      if (seq->num_shifts > shifts_seen) {
        shifts_seen = seq->num_shifts;
        // The sink block stays where it was; positions of the window moved down instead.
        EXPECT_EQ(seq->blocks.front(), before.blocks.front());
        EXPECT_EQ(seq->sink_tokens, 4);
        EXPECT_EQ(seq->CacheTokenAt(0), seq->TokenAt(0));
        EXPECT_EQ(seq->CacheTokenAt(seq->CacheLength() - 1), seq->TokenAt(seq->NumTokens() - 1));
      }
    } else {
      ASSERT_EQ(updates.size(), 1u);
      EXPECT_EQ(updates[0].reason, FinishReason::kLength);
      EXPECT_EQ(updates[0].num_output_tokens, 80);
    }
  }
  EXPECT_GE(shifts_seen, 3);
  EXPECT_EQ(s.blocks().NumFree(), 16);
}

TEST(SchedulerContextShift, DisabledFinishesAtTheLimit) {
  Scheduler s(Config(8, 100, 32), 16, 4);
  EXPECT_EQ(s.Add(Request(10, 80), 0).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ropewire::scheduler
