// ropewire-bench-grpc: gRPC overhead per streamed token (performance.md G4).
//
// In one run it measures, with the server in a process of its own (pinned to one CPU) and the
// client in this one (pinned to another):
//   echo      a bare callback-API server-streaming echo writing N pre-built one-token messages;
//   ropewire  the real InferenceService + Engine over a NullModel (fixed logits, one token per
//             request per step), producing the same N tokens, at each vocabulary size asked for;
//             at the first size also with the Prometheus metrics recorded (-metrics) and over
//             TLS (-tls), so the cost of each is measured against plaintext without metrics.
// Overhead per token = (server CPU(ropewire) − server CPU(echo)) / N, medians of --runs runs, at
// each stream count. The engine's own counters split the ropewire figure into engine work
// (plan + commit + delivery, sampling, the null model) and the rest (gRPC, reactors, wake-ups).
//
//   ropewire-bench-grpc [--tokens 32768] [--streams 1,8] [--vocabs 256,32000] [--runs 3] [--json
//   PATH]
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/cli_flags.h"
#include "bench/grpc/bench_server.h"
#include "bench/grpc/server_child.h"
#include "bench/grpc/stream_client.h"
#include "nlohmann/json.hpp"

namespace ropewire::bench {
namespace {

struct Options {
  std::string serve;  // child mode
  int vocab = 256;
  int tokens = 32768;
  int tokens_per_call = 256;
  std::string streams = "1,8";
  std::string vocabs = "256,32000";
  int runs = 3;
  int server_cpu = -1;
  int client_cpu = -1;
  std::string json_path;
};

struct ServerSpec {
  std::string label;  // "echo", "ropewire-v256", "ropewire-v256-tls", ...
  std::string kind;   // "echo", "ropewire", "ropewire-metrics", "ropewire-tls"
  int vocab = 0;
  bool tls = false;
};

struct RunRow {
  std::string server;
  int streams = 0;
  ClientResult client;
  ServerSample cpu;
};

std::vector<int> ParseList(const std::string& text) {
  std::vector<int> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v = 0;
    if (absl::SimpleAtoi(part, &v) && v > 0) values.push_back(v);
  }
  return values;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void PinToCpu(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

std::string SelfExe() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return std::string(path, n > 0 ? static_cast<size_t>(n) : 0);
}

// Medians over the runs of one (server, streams) cell, per token unless named otherwise.
struct Cell {
  double tokens = 0;
  double messages_per_token = 0;
  double tokens_per_s = 0;
  double cpu_us = 0;
  double engine_us = 0;
  double sample_us = 0;
  double execute_us = 0;
  int64_t failed_calls = 0;
};

Cell Summarize(const std::vector<RunRow>& rows, const std::string& server, int streams) {
  std::vector<double> tokens, mpt, tps, cpu, engine, sample, execute;
  Cell cell;
  for (const RunRow& r : rows) {
    if (r.server != server || r.streams != streams || r.client.tokens == 0) continue;
    const double n = static_cast<double>(r.client.tokens);
    tokens.push_back(n);
    mpt.push_back(r.client.messages / n);
    tps.push_back(n / r.client.wall_s);
    cpu.push_back(r.cpu.cpu_us / n);
    engine.push_back(r.cpu.engine_us / n);
    sample.push_back(r.cpu.sample_us / n);
    execute.push_back(r.cpu.execute_us / n);
    cell.failed_calls += r.client.failed_calls;
  }
  cell.tokens = Median(tokens);
  cell.messages_per_token = Median(mpt);
  cell.tokens_per_s = Median(tps);
  cell.cpu_us = Median(cpu);
  cell.engine_us = Median(engine);
  cell.sample_us = Median(sample);
  cell.execute_us = Median(execute);
  return cell;
}

absl::StatusOr<RunRow> MeasureOnce(ServerChild& server, const ServerSpec& spec, int streams,
                                   int calls_per_stream, int tokens_per_call,
                                   const std::string& pki) {
  auto before = server.Sample();
  if (!before.ok()) return before.status();
  RunRow row;
  row.server = spec.label;
  row.streams = streams;
  row.client = RunStreams(server.port(), streams, calls_per_stream, tokens_per_call,
                          spec.tls ? pki + "/ca.pem" : "");
  auto after = server.Sample();
  if (!after.ok()) return after.status();
  row.cpu = *after - *before;
  return row;
}

void PrintTables(const std::vector<ServerSpec>& specs, const std::vector<int>& streams_list,
                 const std::vector<RunRow>& rows, nlohmann::json* summary) {
  std::cout << "\n| streams | server | tokens | msgs/token | tokens/s | server CPU us/token | "
               "engine: plan+commit+deliver"
               " / sample / model us/token | rest (gRPC, reactors, wake-ups) us/token |\n"
               "|---|---|---|---|---|---|---|---|\n";
  for (int streams : streams_list) {
    for (const ServerSpec& spec : specs) {
      const Cell c = Summarize(rows, spec.label, streams);
      const double engine_total = c.engine_us + c.sample_us + c.execute_us;
      std::cout << absl::StrFormat(
          "| %d | %s | %.0f | %.3f | %.0f | %.2f | %.2f / %.2f / %.2f | %.2f |\n", streams,
          spec.label, c.tokens, c.messages_per_token, c.tokens_per_s, c.cpu_us, c.engine_us,
          c.sample_us, c.execute_us, c.cpu_us - engine_total);
      (*summary)["cells"].push_back({{"streams", streams},
                                     {"server", spec.label},
                                     {"vocab", spec.vocab},
                                     {"tokens", c.tokens},
                                     {"messages_per_token", c.messages_per_token},
                                     {"tokens_per_s", c.tokens_per_s},
                                     {"server_cpu_us_per_token", c.cpu_us},
                                     {"engine_plan_commit_deliver_us_per_token", c.engine_us},
                                     {"engine_sample_us_per_token", c.sample_us},
                                     {"engine_model_us_per_token", c.execute_us},
                                     {"failed_calls", c.failed_calls}});
    }
  }
  // ropewire coalesces tokens into fewer messages when the engine outruns the writes, so its
  // per-token gRPC cost can fall below the echo's; the per-message column compares like with like.
  std::cout << "\n| streams | vocab | echo CPU us/token | ropewire CPU us/token | overhead "
               "us/token (ropewire - echo)"
               " | ratio ropewire/echo | ropewire msgs/token | ropewire non-engine CPU us/message "
               "| echo CPU us/message"
               " |\n|---|---|---|---|---|---|---|---|---|\n";
  for (int streams : streams_list) {
    const Cell echo = Summarize(rows, "echo", streams);
    for (const ServerSpec& spec : specs) {
      if (spec.kind != "ropewire") continue;
      const Cell c = Summarize(rows, spec.label, streams);
      const double overhead = c.cpu_us - echo.cpu_us;
      const double rest_per_message =
          (c.cpu_us - (c.engine_us + c.sample_us + c.execute_us)) / c.messages_per_token;
      const double echo_per_message = echo.cpu_us / echo.messages_per_token;
      std::cout << absl::StrFormat("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f |\n",
                                   streams, spec.vocab, echo.cpu_us, c.cpu_us, overhead,
                                   c.cpu_us / echo.cpu_us, c.messages_per_token, rest_per_message,
                                   echo_per_message);
      (*summary)["overhead"].push_back(
          {{"streams", streams},
           {"vocab", spec.vocab},
           {"echo_cpu_us_per_token", echo.cpu_us},
           {"ropewire_cpu_us_per_token", c.cpu_us},
           {"overhead_us_per_token", overhead},
           {"ratio", c.cpu_us / echo.cpu_us},
           {"ropewire_messages_per_token", c.messages_per_token},
           {"ropewire_non_engine_cpu_us_per_message", rest_per_message},
           {"echo_cpu_us_per_message", echo_per_message}});
    }
  }
}

// What TLS and the Prometheus metrics add to plaintext ropewire without metrics, per token.
void PrintOpsTable(const std::vector<int>& streams_list, int vocab, const std::vector<RunRow>& rows,
                   nlohmann::json* summary) {
  const std::string base = "ropewire-v" + std::to_string(vocab);
  std::cout << "\n| streams | vocab | plaintext CPU us/token | +metrics | +TLS | metrics cost "
               "us/token | TLS cost us/token |\n|---|---|---|---|---|---|---|\n";
  for (int streams : streams_list) {
    const double plain = Summarize(rows, base, streams).cpu_us;
    const double metrics = Summarize(rows, base + "-metrics", streams).cpu_us;
    const double tls = Summarize(rows, base + "-tls", streams).cpu_us;
    std::cout << absl::StrFormat("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", streams, vocab,
                                 plain, metrics, tls, metrics - plain, tls - plain);
    (*summary)["ops_cost"].push_back({{"streams", streams},
                                      {"vocab", vocab},
                                      {"plaintext_cpu_us_per_token", plain},
                                      {"metrics_cpu_us_per_token", metrics},
                                      {"tls_cpu_us_per_token", tls},
                                      {"metrics_cost_us_per_token", metrics - plain},
                                      {"tls_cost_us_per_token", tls - plain}});
  }
}

// A throwaway CA and server certificate for the TLS server, made by the tests' own script.
absl::StatusOr<std::string> MakePki() {
  char dir[] = "/tmp/ropewire-bench-pki.XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp failed");
  const std::string command =
      std::string(ROPEWIRE_SOURCE_DIR) + "/tests/server/make_test_certs.sh " + dir + " > /dev/null";
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError("could not make the TLS test files: " + command);
  }
  return std::string(dir);
}

int BenchMain(const Options& o) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const int server_cpu = o.server_cpu >= 0 ? o.server_cpu : (cpus >= 2 ? 1 : -1);
  const int client_cpu = o.client_cpu >= 0 ? o.client_cpu : (cpus >= 2 ? 0 : -1);
  PinToCpu(client_cpu);  // before any gRPC thread exists, so they all inherit it
  std::vector<ServerSpec> specs = {{"echo", "echo", 0}};
  const std::vector<int> vocabs = ParseList(o.vocabs);
  for (int v : vocabs) specs.push_back({"ropewire-v" + std::to_string(v), "ropewire", v});
  // TLS and metrics at the first vocabulary size, each against plaintext without metrics.
  const int ops_vocab = vocabs.empty() ? 256 : vocabs.front();
  if (vocabs.empty()) specs.push_back({"ropewire-v256", "ropewire", 256});
  specs.push_back(
      {"ropewire-v" + std::to_string(ops_vocab) + "-metrics", "ropewire-metrics", ops_vocab});
  specs.push_back(
      {"ropewire-v" + std::to_string(ops_vocab) + "-tls", "ropewire-tls", ops_vocab, true});
  auto pki = MakePki();
  if (!pki.ok()) {
    std::cerr << pki.status() << "\n";
    return 1;
  }
  setenv(kBenchPkiVariable, pki->c_str(), 1);  // the children read it
  const std::vector<int> streams_list = ParseList(o.streams);
  std::map<std::string, std::unique_ptr<ServerChild>> servers;
  for (const ServerSpec& spec : specs) {
    auto child = ServerChild::Start(SelfExe(), spec.kind, std::max(spec.vocab, 1), server_cpu);
    if (!child.ok()) {
      std::cerr << child.status() << "\n";
      return 1;
    }
    servers[spec.label] = std::move(*child);
  }
  std::cout << absl::StrFormat(
      "gRPC streaming overhead: %d tokens per run (%d per call), %d runs, server on CPU %d, "
      "client on CPU %d\n",
      o.tokens, o.tokens_per_call, o.runs, server_cpu, client_cpu);
  std::vector<RunRow> rows;
  for (int streams : streams_list) {
    const int calls_per_stream =
        std::max(1, (o.tokens + streams * o.tokens_per_call - 1) / (streams * o.tokens_per_call));
    for (const ServerSpec& spec : specs) {  // warm-up: connections, allocator, first-call paths
      (void)MeasureOnce(*servers[spec.label], spec, streams, 1, o.tokens_per_call, *pki);
    }
    for (int run = 0; run < o.runs; ++run) {
      for (const ServerSpec& spec :
           specs) {  // interleaved, so drifting machine load hits all alike
        auto row = MeasureOnce(*servers[spec.label], spec, streams, calls_per_stream,
                               o.tokens_per_call, *pki);
        if (!row.ok()) {
          std::cerr << row.status() << "\n";
          return 1;
        }
        std::cout << absl::StrFormat(
            "  streams %d run %d %-16s %7d tokens %8.3f s  server CPU %8.3f s%s\n", streams,
            run + 1, spec.label, row->client.tokens, row->client.wall_s, row->cpu.cpu_us / 1e6,
            row->client.failed_calls ? "  FAILED: " + row->client.first_error : "");
        rows.push_back(std::move(*row));
      }
    }
  }
  nlohmann::json summary = {{"tokens_per_run", o.tokens},
                            {"tokens_per_call", o.tokens_per_call},
                            {"runs", o.runs},
                            {"server_cpu", server_cpu},
                            {"client_cpu", client_cpu},
                            {"cpus", cpus},
                            {"cells", nlohmann::json::array()},
                            {"overhead", nlohmann::json::array()},
                            {"ops_cost", nlohmann::json::array()}};
  PrintTables(specs, streams_list, rows, &summary);
  PrintOpsTable(streams_list, ops_vocab, rows, &summary);
  std::filesystem::remove_all(*pki);
  if (!o.json_path.empty()) std::ofstream(o.json_path) << summary.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::bench::Options o;
  ropewire::base::CliFlags flags(
      "usage: ropewire-bench-grpc [--tokens N] [--streams 1,8] [--vocabs 256,32000] [--runs 3]");
  flags.Add("tokens", &o.tokens, "tokens streamed per run and server");
  flags.Add("tokens-per-call", &o.tokens_per_call, "max_tokens of each GenerateStream call");
  flags.Add("streams", &o.streams, "concurrent streams to measure, comma-separated");
  flags.Add("vocabs", &o.vocabs, "null-model vocabulary sizes, comma-separated (sampling cost)");
  flags.Add("runs", &o.runs, "runs per cell; medians are reported");
  flags.Add("server-cpu", &o.server_cpu,
            "CPU for the server process (-1: CPU 1 when there are two)");
  flags.Add("client-cpu", &o.client_cpu, "CPU for the client (-1: CPU 0 when there are two)");
  flags.Add("json", &o.json_path, "write the medians as JSON here");
  flags.Add("serve", &o.serve,
            "internal: run as the benchmark server (echo, ropewire, ropewire-metrics or "
            "ropewire-tls)");
  flags.Add("vocab", &o.vocab, "internal: the server's null-model vocabulary");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::cerr << s.message() << "\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (!o.serve.empty()) return ropewire::bench::ServeMain(o.serve, o.vocab);
  if (o.tokens < 1 || o.tokens_per_call < 1 || o.runs < 1) {
    std::cerr << "--tokens, --tokens-per-call and --runs must be positive\n";
    return 2;
  }
  return ropewire::bench::BenchMain(o);
}
