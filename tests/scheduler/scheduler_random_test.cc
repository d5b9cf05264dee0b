// Randomised arrivals, finishes, cancels, deadlines, preemptions and prefix hits: after every
// step no block is lost or double-owned; after draining every block is free.
#include <random>

#include "gtest/gtest.h"
#include "scheduler/scheduler.h"

namespace ropewire::scheduler {
namespace {

struct Scenario {
  int num_blocks, block_size, max_seqs, max_tokens;
  bool prefix_caching, static_batching;
  uint32_t seed;
};

void RunScenario(const Scenario& sc) {
  SchedulerConfig config;
  config.max_num_seqs = sc.max_seqs;
  config.max_num_batched_tokens = sc.max_tokens;
  config.max_model_len = 96;
  config.enable_prefix_caching = sc.prefix_caching;
  config.static_batching = sc.static_batching;
  config.eos_token_ids = {2};
  std::unique_ptr<Scheduler> scheduler = Scheduler::Create(config, sc.num_blocks, sc.block_size);
  Scheduler& s = *scheduler;
  std::mt19937 rng(sc.seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<>(0, 1)(rng) < p; };
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<>(lo, hi)(rng); };
  // A few shared prefixes so prefix-cache hits happen.
  std::vector<std::vector<int32_t>> prefixes(3);
  for (auto& p : prefixes)
    for (int i = 0; i < 24; ++i) p.push_back(uniform(3, 200));

  std::vector<int64_t> live;
  int64_t steps = 0, preemptions = 0, finished = 0;
  Clock::time_point now = Clock::now();
  for (int step = 0; step < 20000; ++step) {
    if (step < 1200 && chance(0.4)) {
      GenerationRequest r;
      const auto& prefix = prefixes[uniform(0, 2)];
      r.prompt.assign(prefix.begin(), prefix.begin() + uniform(1, 24));
      for (int i = uniform(0, 20); i > 0; --i) r.prompt.push_back(uniform(3, 200));
      r.max_tokens = uniform(1, 40);
      if (chance(0.1)) r.deadline = now + std::chrono::milliseconds(uniform(1, 200));
      auto id = s.Add(r, 0);
      if (id.ok()) live.push_back(*id);
    }
    if (!live.empty() && chance(0.05))
      s.Finish(live[uniform(0, int(live.size()) - 1)], FinishReason::kCancelled);
    now += std::chrono::milliseconds(5);
    s.ExpireDeadlines(now);
    SchedulerOutput out = s.Plan();
    ASSERT_TRUE(model::ValidateStepPlan(out.plan, 256, sc.num_blocks, sc.block_size).ok());
    preemptions += out.preempted.size();
    std::vector<model::SampledToken> samples;
    for (int i = 0; i < out.NumSamples(); ++i)
      samples.push_back({chance(0.03) ? 2 : uniform(3, 200), 0.0f, {}});
    for (const auto& u : s.Commit(out, samples)) finished += u.finished ? 1 : 0;
    ASSERT_TRUE(s.CheckInvariants().ok()) << "step " << step << ": " << s.CheckInvariants();
    if (!out.empty()) ++steps;
    if (step >= 1200 && !s.HasWork()) break;
  }
  EXPECT_FALSE(s.HasWork()) << "the workload did not drain: " << s.NumWaiting() << " waiting, "
                            << s.NumRunning() << " running, plan empty: " << s.Plan().empty();
  EXPECT_EQ(s.blocks().NumFree(), sc.num_blocks) << "blocks leaked";
  EXPECT_GT(finished, 100);
  if (!sc.static_batching && sc.num_blocks < 40) {
    EXPECT_GT(preemptions, 0) << "the scenario was meant to force preemptions";
  }
  if (sc.prefix_caching && !sc.static_batching) {
    EXPECT_GT(s.prefix_hit_tokens(), 0);
  }
}

TEST(SchedulerRandomized, NoBlockLostOrDoubleOwned) {
  RunScenario({24, 4, 16, 64, true, false, 1});  // tight cache: many preemptions
  RunScenario({24, 4, 16, 64, false, false, 2});
  RunScenario({200, 8, 8, 32, true, false, 3});   // roomy cache, small token budget
  RunScenario({64, 1, 32, 512, true, false, 4});  // one-token blocks
  RunScenario({120, 4, 4, 128, false, true, 5});  // static batching
}

}  // namespace
}  // namespace ropewire::scheduler
