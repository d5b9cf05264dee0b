// ropewire-bench-balancer: what a load balancer in front of ropewire costs. One replica (demo
// model) serves the same streaming load directly and through Envoy, HAProxy and nginx, each
// running the config deploy/ ships with all three replica slots pointing at that one replica,
// so the only difference is the proxy hop. Targets are interleaved round by round; the report
// gives each target's p50/p99 time to first token and end-to-end latency (medians over rounds)
// and their ratios to the direct path, measured in the same run.
//
//   build/bench/balancer/ropewire-bench-balancer [--rounds 3] [--requests 200] [--concurrency 4]
//       [--output-len 32] [--json bench/results/balancer.json]
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_format.h"
#include "base/cli_flags.h"
#include "client/load_generator.h"
#include "nlohmann/json.hpp"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/deploy/local_deployment.h"

namespace ropewire::bench {
namespace {

using testing::Balancer;
using testing::BalancerKind;

struct Options {
  int rounds = 3;
  int requests = 200;
  int concurrency = 4;
  int prompt_len = 32;
  int output_len = 32;
  std::string json = "bench/results/balancer.json";
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

absl::StatusOr<client::LoadOptions> BaseLoad(const Options& options, const std::string& replica) {
  auto stub =
      v1::Inference::NewStub(grpc::CreateChannel(replica, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ModelInfo info;
  if (grpc::Status s = stub->GetModelInfo(&context, {}, &info); !s.ok())
    return absl::UnavailableError(s.error_message());
  client::LoadOptions load;
  load.connections = 1;
  load.concurrency = options.concurrency;
  load.requests = options.requests;
  load.stream = true;
  load.seed = 1;  // the same prompts, in the same order, for every target
  load.vocab_size = static_cast<int>(info.vocab_size());
  load.max_model_len = static_cast<int>(info.max_model_len());
  load.timeout_s = 60;
  auto prompt = client::LengthDistribution::Parse(std::to_string(options.prompt_len), "prompt-len");
  auto output = client::LengthDistribution::Parse(std::to_string(options.output_len), "output-len");
  if (!prompt.ok()) return prompt.status();
  if (!output.ok()) return output.status();
  load.prompt_len = *prompt;
  load.output_len = *output;
  load.base_request.set_temperature(0.0f);
  load.base_request.set_ignore_eos(true);
  return load;
}

struct TargetFigures {
  std::map<std::string, std::vector<double>> per_round;  // metric -> one value per round
  int64_t failed = 0;
};

int Run(const Options& options) {
  testing::Replica replica;
  testing::ReplicaOptions replica_options;
  replica_options.max_num_seqs = 64;
  if (auto s = replica.Start("ropewire-1", replica_options); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 1;
  }
  const std::vector<std::string> addresses(3, replica.address());
  const std::vector<std::string> names = {"ropewire-1"};
  const std::vector<int> metrics_ports(3, replica.metrics_port());
  std::map<std::string, std::unique_ptr<Balancer>> balancers;
  for (BalancerKind kind : {BalancerKind::kEnvoy, BalancerKind::kHaproxy, BalancerKind::kNginx}) {
    auto balancer = std::make_unique<Balancer>();
    if (auto s = balancer->Start(kind, addresses, names, metrics_ports); !s.ok()) {
      std::cerr << s.message() << "\n";
      return 1;
    }
    balancers[testing::BalancerName(kind)] = std::move(balancer);
  }
  auto base = BaseLoad(options, replica.address());
  if (!base.ok()) {
    std::cerr << base.status().message() << "\n";
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> targets = {{"direct", replica.address()}};
  for (const auto& [name, balancer] : balancers) targets.emplace_back(name, balancer->address());

  std::map<std::string, TargetFigures> figures;
  for (int round = 0; round < options.rounds; ++round) {
    for (const auto& [name, address] : targets) {
      client::LoadOptions load = *base;
      load.connection.target = address;
      auto result = client::RunLoad(load);
      if (!result.ok()) {
        std::cerr << name << ": " << result.status().message() << "\n";
        return 1;
      }
      const client::LoadReport report = client::BuildReport(result->records, result->duration_s);
      auto& f = figures[name];
      f.failed += report.requests - report.ok;
      f.per_round["ttft_p50_ms"].push_back(report.ttft.p50 * 1e3);
      f.per_round["ttft_p99_ms"].push_back(report.ttft.p99 * 1e3);
      f.per_round["e2e_p50_ms"].push_back(report.e2e.p50 * 1e3);
      f.per_round["e2e_p99_ms"].push_back(report.e2e.p99 * 1e3);
      std::cerr << absl::StrFormat("round %d %-8s TTFT p50 %.2f ms  e2e p50 %.1f ms  failed %d\n",
                                   round + 1, name, report.ttft.p50 * 1e3, report.e2e.p50 * 1e3,
                                   report.requests - report.ok);
    }
  }

  nlohmann::json out = {{"config",
                         {{"rounds", options.rounds},
                          {"requests", options.requests},
                          {"concurrency", options.concurrency},
                          {"connections", 1},
                          {"prompt_len", options.prompt_len},
                          {"output_len", options.output_len},
                          {"replica", "models/demo, --threads 1, OMP_NUM_THREADS=1"}}}};
  std::cout << "| target | TTFT p50 | TTFT p99 | e2e p50 | e2e p99 | failed "
               "|\n|---|---|---|---|---|---|\n";
  std::map<std::string, double> direct;
  for (const auto& [name, address] : targets) {
    const auto& f = figures[name];
    nlohmann::json entry = {{"failed", f.failed}};
    std::string row = "| " + name;
    for (const char* metric : {"ttft_p50_ms", "ttft_p99_ms", "e2e_p50_ms", "e2e_p99_ms"}) {
      const double median = Median(f.per_round.at(metric));
      if (name == "direct") direct[metric] = median;
      const double ratio = median / direct[metric];
      entry[metric] = median;
      entry[std::string(metric) + "_rounds"] = f.per_round.at(metric);
      entry[std::string(metric) + "_ratio"] = ratio;
      row += absl::StrFormat(" | %.2f ms (%.2fx)", median, ratio);
    }
    out["targets"][name] = entry;
    std::cout << row << " | " << f.failed << " |\n";
  }
  std::ofstream(options.json) << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::bench::Options options;
  ropewire::base::CliFlags flags("usage: ropewire-bench-balancer [flags]");
  flags.Add("rounds", &options.rounds, "interleaved rounds over all targets (figures are medians)");
  flags.Add("requests", &options.requests, "streaming requests per target per round");
  flags.Add("concurrency", &options.concurrency, "calls in flight, all on one connection");
  flags.Add("prompt-len", &options.prompt_len,
            "prompt tokens (random ids, the same for every target)");
  flags.Add("output-len", &options.output_len, "generated tokens per request");
  flags.Add("json", &options.json, "where the results go");
  if (auto s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::cerr << (s.ok() ? "" : std::string(s.message()) + "\n") << flags.Help();
    return s.ok() ? 0 : 2;
  }
  if (options.rounds < 1 || options.requests < 1 || options.concurrency < 1) {
    std::cerr << "--rounds, --requests and --concurrency must be positive\n";
    return 2;
  }
  return ropewire::bench::Run(options);
}
