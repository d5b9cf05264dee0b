// Three ropewire replicas behind each balancer of deploy/ (its shipped config, addresses
// changed), under streaming load from one client connection:
//   1. the load spreads: every replica serves at least 20 % of the calls;
//   2. one replica gets SIGTERM mid-run: not one call fails across its drain;
//   3. another gets SIGKILL once the first has exited: no more calls fail than it had in
//      flight, and none from 3 s after the kill on;
//   and every call that completed produced exactly the text the same greedy request gets from
//   a replica directly. HAProxy in TCP mode shows why an L4 balancer is wrong for gRPC.
// Figures go to the test's output and to tests/deploy/results/<balancer>.json in the build.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/deploy/local_deployment.h"
#include "tests/deploy/stream_load.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kDistinctRequests = 24;
constexpr int kMaxTokens = 12;
constexpr int kCalls = 300;
constexpr int kConcurrency = 6;
const std::vector<std::string> kReplicaNames = {"ropewire-1", "ropewire-2", "ropewire-3"};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::map<std::string, int> CallsPerReplica(const std::vector<CallRecord>& records) {
  std::map<std::string, int> calls;
  for (const auto& r : records) {
    if (r.code == 0) ++calls[r.replica];
  }
  return calls;
}

nlohmann::json Failures(const std::vector<CallRecord>& records, SteadyTime origin) {
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& r : records) {
    if (r.code == 0) continue;
    failures.push_back({{"start_s", Seconds(r.start - origin)},
                        {"end_s", Seconds(r.end - origin)},
                        {"code", r.code},
                        {"error", r.error},
                        {"replica", r.replica}});
  }
  return failures;
}

void SaveResult(const std::string& balancer, const nlohmann::json& result) {
  const std::string dir = std::string(ROPEWIRE_BINARY_DIR) + "/tests/deploy/results";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + balancer + ".json") << result.dump(2) << "\n";
  std::cout << "[ result   ] " << balancer << ": " << result.dump() << "\n";
}

// Calls of one load with a SIGTERM and a SIGKILL in it, and when each happened.
struct FaultedRun {
  std::vector<CallRecord> records;
  SteadyTime start, end, term_time, kill_time, death_time;
  int term_exit = -2, killed_exit = -2;
  int engine_in_flight_at_kill = -1;  // the killed replica's own count, just before the signal
};

class BalancerE2E : public ::testing::TestWithParam<BalancerKind> {
 protected:
  void SetUp() override {
    requests_ = GreedyRequests(kDistinctRequests, kMaxTokens);
    for (const auto& name : kReplicaNames) {
      replicas_.push_back(std::make_unique<Replica>());
      ASSERT_TRUE(replicas_.back()->Start(name, ReplicaOptions()).ok()) << name;
    }
    // What each request yields from a replica directly, no balancer in between.
    LoadPlan direct{replicas_[2]->address(), requests_, /*concurrency=*/1, kDistinctRequests};
    for (const auto& record : RunStreamLoad(direct)) {
      ASSERT_EQ(record.code, 0) << record.error;
      reference_[record.request_index] = record.text;
    }
  }

  std::vector<std::string> Addresses() const {
    std::vector<std::string> addresses;
    for (const auto& r : replicas_) addresses.push_back(r->address());
    return addresses;
  }
  std::vector<int> MetricsPorts() const {
    std::vector<int> ports;
    for (const auto& r : replicas_) ports.push_back(r->metrics_port());
    return ports;
  }

  // Completed calls whose text differs from the direct reference.
  int TextMismatches(const std::vector<CallRecord>& records) const {
    int mismatches = 0;
    for (const auto& r : records) {
      if (r.code == 0 && r.text != reference_.at(r.request_index)) ++mismatches;
    }
    return mismatches;
  }

  nlohmann::json RunBalanced(const std::string& target);
  FaultedRun RunWithDrainAndCrash(const std::string& target);

  std::vector<v1::GenerateRequest> requests_;
  std::map<int, std::string> reference_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

// The figures the test holds a faulted run to.
struct FaultCounts {
  int in_flight = 0;  // what the killed replica had in flight when it died (see Count)
  int answered_open_at_death = 0;
  int failed_before_kill = 0;  // across the SIGTERM drain, which ended before the kill
  int failed_after_kill = 0;
  int failed_late = 0;  // ended 3 s or more after the killed replica died
  int started_after_kill = 0;
  int failed_started_after_death = 0;
};

FaultCounts Count(const FaultedRun& run) {
  FaultCounts c;
  // The killed replica's in-flight calls: its engine's count just before the signal, or the
  // calls open at its death that it had answered, whichever is larger (calls on the wire to it
  // are in neither, so both are lower bounds).
  for (const auto& r : run.records) {
    if (r.start < run.death_time && r.end >= run.kill_time && r.replica == kReplicaNames[1]) {
      ++c.answered_open_at_death;
    }
  }
  c.in_flight = std::max(run.engine_in_flight_at_kill, c.answered_open_at_death);
  for (const auto& r : run.records) {
    if (r.start >= run.kill_time) ++c.started_after_kill;
    if (r.code == 0) continue;
    if (r.start >= run.death_time) ++c.failed_started_after_death;
    if (r.end < run.kill_time)
      ++c.failed_before_kill;
    else
      ++c.failed_after_kill;
    if (r.end >= run.death_time + 3s) ++c.failed_late;
  }
  return c;
}

nlohmann::json FaultsToJson(const FaultedRun& run, const FaultCounts& c) {
  return {{"calls", run.records.size()},
          {"seconds", Seconds(run.end - run.start)},
          {"sigterm_at_s", Seconds(run.term_time - run.start)},
          {"drained_replica_exit_code", run.term_exit},
          {"drain_seconds", Seconds(run.kill_time - run.term_time)},
          {"sigkill_at_s", Seconds(run.kill_time - run.start)},
          {"killed_replica_died_after_s", Seconds(run.death_time - run.kill_time)},
          {"killed_replica_in_flight", c.in_flight},
          {"killed_replica_engine_in_flight", run.engine_in_flight_at_kill},
          {"killed_replica_answered_calls_open", c.answered_open_at_death},
          {"calls_started_after_kill", c.started_after_kill},
          {"failed_started_after_death", c.failed_started_after_death},
          {"failed_across_sigterm", c.failed_before_kill},
          {"failed_after_sigkill", c.failed_after_kill},
          {"failed_3s_after_sigkill", c.failed_late},
          {"calls_per_replica", CallsPerReplica(run.records)},
          {"failures", Failures(run.records, run.start)}};
}

// 1. Balanced: the calls of one connection spread over all three replicas. At least 300 calls
// and 6 s: least-connections balancers send more calls to whichever replica the OS gives more
// CPU (three single-threaded replicas share two cores here), and a few seconds average that out.
nlohmann::json BalancerE2E::RunBalanced(const std::string& target) {
  const auto start = Clock::now();
  std::atomic<int64_t> until_ns{(start + 6s).time_since_epoch().count()};
  const std::vector<CallRecord> records =
      RunStreamLoad({target, requests_, kConcurrency, kCalls, &until_ns});
  const auto per_replica = CallsPerReplica(records);
  nlohmann::json result = {{"calls", records.size()},
                           {"seconds", Seconds(Clock::now() - start)},
                           {"calls_per_replica", per_replica},
                           {"failures", Failures(records, start)},
                           {"text_mismatches", TextMismatches(records)}};
  EXPECT_EQ(result["failures"].size(), 0u) << result.dump(2);
  EXPECT_EQ(TextMismatches(records), 0);
  for (const auto& replica : kReplicaNames) {
    const int calls = per_replica.count(replica) ? per_replica.at(replica) : 0;
    EXPECT_GE(calls * 5, static_cast<int>(records.size()))
        << replica << " served too few: " << result.dump();
  }
  return result;
}

// 2 and 3. SIGTERM ropewire-1 a quarter of the way in; once it has exited, SIGKILL ropewire-2
// (asking first what it has in flight); then 4 s more load.
FaultedRun BalancerE2E::RunWithDrainAndCrash(const std::string& target) {
  FaultedRun run;
  std::atomic<int> finished{0};
  // Until the kill has happened the load must not end on its own.
  std::atomic<int64_t> run_until_ns{(Clock::now() + 120s).time_since_epoch().count()};
  run.start = Clock::now();
  std::thread faults([&] {
    while (finished < kCalls / 4 && Clock::now() - run.start < 60s)
      std::this_thread::sleep_for(1ms);
    run.term_time = Clock::now();
    replicas_[0]->process().Signal(SIGTERM);
    run.term_exit = replicas_[0]->process().Wait(60s);
    run.engine_in_flight_at_kill = replicas_[1]->InFlight();
    run.kill_time = Clock::now();
    replicas_[1]->process().Signal(SIGKILL);
    // Gone once reaped: its sockets are closed (the balancer sees the resets) before that.
    run.killed_exit = replicas_[1]->process().Wait(10s);
    run.death_time = Clock::now();
    run_until_ns = (run.death_time + 4s).time_since_epoch().count();
  });
  LoadPlan plan{target, requests_, kConcurrency, kCalls, &run_until_ns};
  plan.on_call_finished = [&](int n) { finished = n; };
  run.records = RunStreamLoad(plan);
  run.end = Clock::now();
  faults.join();
  return run;
}

TEST_P(BalancerE2E, SpreadsOneConnectionAndLosesNothingToADrain) {
  Balancer balancer;
  const absl::Status started =
      balancer.Start(GetParam(), Addresses(), kReplicaNames, MetricsPorts());
  ASSERT_TRUE(started.ok()) << started.message();
  const std::string name = BalancerName(GetParam());
  nlohmann::json result = {{"balancer", name},
                           {"calls_per_run_min", kCalls},
                           {"concurrency", kConcurrency},
                           {"max_tokens", kMaxTokens},
                           {"connections", 1}};
  result["balanced"] = RunBalanced(balancer.address());

  const FaultedRun run = RunWithDrainAndCrash(balancer.address());
  const FaultCounts counts = Count(run);
  result["faults"] = FaultsToJson(run, counts);
  result["faults"]["text_mismatches"] = TextMismatches(run.records);
  SaveResult(name, result);
  EXPECT_EQ(run.term_exit, 0) << "the drained replica did not exit 0:\n"
                              << replicas_[0]->process().output();
  EXPECT_EQ(run.killed_exit, 128 + SIGKILL);
  EXPECT_EQ(counts.failed_before_kill, 0) << "calls failed across the SIGTERM drain";
  // Open-source nginx learns that a replica died only from failed calls (deploy/nginx/README.md):
  // its figure is recorded, not held to the bound.
  if (GetParam() != BalancerKind::kNginx) {
    EXPECT_LE(counts.failed_after_kill, counts.in_flight)
        << "more failures than calls the killed replica had";
  }
  EXPECT_EQ(counts.failed_late, 0) << "calls still failed 3 s after the kill";
  EXPECT_GT(counts.started_after_kill, 0) << "no load after the kill; the test proves nothing";
  EXPECT_EQ(TextMismatches(run.records), 0);
}

INSTANTIATE_TEST_SUITE_P(Deploy, BalancerE2E,
                         ::testing::Values(BalancerKind::kEnvoy, BalancerKind::kHaproxy,
                                           BalancerKind::kNginx),
                         [](const auto& info) {
                           std::string name = BalancerName(info.param);
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

// An L4 balancer picks a replica per TCP connection: all calls of one client connection go to
// one replica. Recorded, and asserted only as "one replica got most calls".
TEST(BalancerL4, TcpModeSendsOneConnectionToOneReplica) {
  std::vector<std::unique_ptr<Replica>> replicas;
  std::vector<std::string> addresses;
  for (const auto& name : kReplicaNames) {
    replicas.push_back(std::make_unique<Replica>());
    ASSERT_TRUE(replicas.back()->Start(name, ReplicaOptions()).ok()) << name;
    addresses.push_back(replicas.back()->address());
  }
  Balancer balancer;
  const absl::Status started = balancer.Start(BalancerKind::kHaproxyL4, addresses, kReplicaNames);
  ASSERT_TRUE(started.ok()) << started.message();
  const auto records =
      RunStreamLoad({balancer.address(), GreedyRequests(kDistinctRequests, kMaxTokens),
                     kConcurrency, /*min_calls=*/120});
  const auto per_replica = CallsPerReplica(records);
  int most = 0;
  for (const auto& [replica, calls] : per_replica) most = std::max(most, calls);
  SaveResult("haproxy-l4", {{"balancer", "haproxy-l4"},
                            {"calls", records.size()},
                            {"calls_per_replica", per_replica},
                            {"connections", 1}});
  EXPECT_GT(most, static_cast<int>(records.size()) / 2);
}

}  // namespace
}  // namespace ropewire::testing
