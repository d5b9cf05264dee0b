// ropewire-bench-serving: continuous batching against the static-batching mode of the same
// engine, on a random Llama-shaped model written at bench time, with Poisson arrivals and
// exponential output lengths (seeded). Reports output tokens/s at saturation, median TTFT and
// TPOT at a moderate rate, scheduler CPU time per step, and the prefix-cache hit rate on a
// shared-prefix workload. Runs are interleaved (continuous, static, continuous, ...) and the
// medians reported.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "base/cli_flags.h"
#include "bench/model/random_llama.h"
#include "bench/serving/workload.h"
#include "model/executor.h"
#include "nlohmann/json.hpp"
#include "scheduler/engine.h"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  int requests = 96;
  double rate = 0;  // of the latency runs; 0: half the measured saturation throughput
  int repeats = 3;
  int threads = 0;
  int kv_tokens = 8192;
  int max_model_len = 512;
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  std::string json_path;
  std::string scratch = "/tmp";
  int min_prompt = 32, max_prompt = 256;
  double mean_output = 64;
  int max_output = 256;
};

// Records when each request's tokens arrive.
class TimingSink : public scheduler::OutputSink {
 public:
  TimingSink(Clock::time_point submitted, std::function<void()> on_done)
      : submitted_(submitted), on_done_(std::move(on_done)) {}
  bool OnOutput(const scheduler::RequestOutput& out) override {
    const Clock::time_point now = Clock::now();
    if (!out.new_tokens.empty()) {
      if (tokens_ == 0) first_ = now;
      tokens_ += static_cast<int>(out.new_tokens.size());
    }
    if (out.finished) {
      last_ = now;
      on_done_();
    }
    return true;
  }
  double Ttft() const { return std::chrono::duration<double>(first_ - submitted_).count(); }
  double Tpot() const {
    return tokens_ > 1 ? std::chrono::duration<double>(last_ - first_).count() / (tokens_ - 1) : 0;
  }
  int tokens() const { return tokens_; }

 private:
  Clock::time_point submitted_, first_, last_;
  std::function<void()> on_done_;
  int tokens_ = 0;
};

struct RunResult {
  double seconds = 0, output_tokens_per_s = 0, median_ttft = 0, median_tpot = 0;
  double schedule_us_per_step = 0, execute_ms_per_step = 0, scheduler_fraction = 0;
  double schedule_cpu_us_per_step = 0, scheduler_cpu_fraction = 0;
  int64_t steps = 0, output_tokens = 0, preemptions = 0;
  double prefix_hit_rate = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

absl::StatusOr<RunResult> RunOnce(const std::string& model_dir, const Options& o,
                                  bool static_batching, const std::vector<TimedRequest>& workload) {
  model::ExecutorOptions executor_options;
  executor_options.block_size = 16;
  executor_options.num_blocks = o.kv_tokens / 16;
  executor_options.num_threads = o.threads;
  auto executor = model::LoadExecutor(model_dir, executor_options);
  if (!executor.ok()) return executor.status();
  scheduler::EngineConfig config;
  config.scheduler.max_num_seqs = o.max_num_seqs;
  config.scheduler.max_num_batched_tokens = o.max_num_batched_tokens;
  config.scheduler.max_model_len = o.max_model_len;
  config.scheduler.static_batching = static_batching;
  config.scheduler.max_waiting = 100000;
  auto engine = scheduler::Engine::Create(std::move(*executor), config);
  if (!engine.ok()) return engine.status();

  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<std::shared_ptr<TimingSink>> sinks;
  const Clock::time_point start = Clock::now();
  for (const TimedRequest& timed : workload) {
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(timed.arrival_seconds)));
    auto sink = std::make_shared<TimingSink>(Clock::now(), [&] {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      cv.notify_one();
    });
    sinks.push_back(sink);
    if (absl::Status s = (*engine)->Submit(timed.request, sink); !s.ok()) return s;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == static_cast<int>(workload.size()); });
  }
  RunResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> ttft, tpot;
  for (const auto& sink : sinks) {
    r.output_tokens += sink->tokens();
    ttft.push_back(sink->Ttft());
    if (sink->tokens() > 1) tpot.push_back(sink->Tpot());
  }
  r.output_tokens_per_s = r.output_tokens / r.seconds;
  r.median_ttft = Median(ttft);
  r.median_tpot = Median(tpot);
  (*engine)->Stop(std::chrono::milliseconds(0));
  const scheduler::EngineStats stats = (*engine)->Stats();
  r.steps = stats.steps;
  r.preemptions = stats.preemptions;
  r.schedule_us_per_step = 1e6 * stats.schedule_seconds / std::max<int64_t>(1, stats.steps);
  r.execute_ms_per_step = 1e3 * stats.execute_seconds / std::max<int64_t>(1, stats.steps);
  r.scheduler_fraction = stats.schedule_seconds / std::max(1e-9, stats.execute_seconds);
  r.schedule_cpu_us_per_step = 1e6 * stats.schedule_cpu_seconds / std::max<int64_t>(1, stats.steps);
  r.scheduler_cpu_fraction = stats.schedule_cpu_seconds / std::max(1e-9, stats.execute_seconds);
  r.prefix_hit_rate =
      stats.prompt_tokens ? double(stats.prefix_hit_tokens) / stats.prompt_tokens : 0;
  return r;
}

json ToJson(const RunResult& r) {
  return {{"seconds", r.seconds},
          {"output_tokens", r.output_tokens},
          {"output_tokens_per_s", r.output_tokens_per_s},
          {"median_ttft_s", r.median_ttft},
          {"median_tpot_s", r.median_tpot},
          {"steps", r.steps},
          {"preemptions", r.preemptions},
          {"scheduler_us_per_step", r.schedule_us_per_step},
          {"model_ms_per_step", r.execute_ms_per_step},
          {"scheduler_fraction_of_model_time", r.scheduler_fraction},
          {"scheduler_cpu_us_per_step", r.schedule_cpu_us_per_step},
          {"scheduler_cpu_fraction_of_model_time", r.scheduler_cpu_fraction},
          {"prefix_hit_rate", r.prefix_hit_rate}};
}

// Runs continuous and static alternately `repeats` times; returns the median run of each by
// the metric.
absl::Status Compare(const std::string& dir, const Options& o, const WorkloadSpec& spec,
                     const char* label, json* out) {
  const auto workload = MakeWorkload(spec);
  std::vector<RunResult> continuous, fixed;
  for (int i = 0; i < o.repeats; ++i) {
    for (bool is_static : {false, true}) {
      auto r = RunOnce(dir, o, is_static, workload);
      if (!r.ok()) return r.status();
      (is_static ? fixed : continuous).push_back(*r);
      std::fprintf(stderr, "  %s %s run %d: %.1f tok/s, TTFT %.3f s, TPOT %.1f ms\n", label,
                   is_static ? "static" : "continuous", i + 1, r->output_tokens_per_s,
                   r->median_ttft, 1e3 * r->median_tpot);
    }
  }
  auto median_by = [](std::vector<RunResult> runs) {
    std::sort(runs.begin(), runs.end(), [](const RunResult& a, const RunResult& b) {
      return a.output_tokens_per_s < b.output_tokens_per_s;
    });
    return runs[runs.size() / 2];
  };
  const RunResult c = median_by(continuous), s = median_by(fixed);
  (*out)[label] = {{"continuous", ToJson(c)},
                   {"static", ToJson(s)},
                   {"throughput_ratio", c.output_tokens_per_s / s.output_tokens_per_s}};
  std::printf("%-11s | %10s | %9.1f | %9.1f | %6.2fx | %8.3f / %-8.3f | %6.1f / %-6.1f\n", label,
              "tok/s", c.output_tokens_per_s, s.output_tokens_per_s,
              c.output_tokens_per_s / s.output_tokens_per_s, c.median_ttft, s.median_ttft,
              1e3 * c.median_tpot, 1e3 * s.median_tpot);
  return absl::OkStatus();
}

absl::Status Run(const Options& o) {
  if (o.max_prompt + o.max_output > o.max_model_len) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--max-prompt (%d) + --max-output (%d) exceeds --max-model-len (%d): requests would be "
        "rejected",
        o.max_prompt, o.max_output, o.max_model_len));
  }
  LlamaShape shape{"serving", 8000, 512, 1408, 8, 8, 4};
  auto scratch = ScratchDir::Create(o.scratch, "ropewire-bench-serving-");
  if (!scratch.ok()) return scratch.status();
  if (absl::Status s = WriteRandomLlama(shape, 7, scratch->path()); !s.ok()) return s;
  std::printf(
      "workload: prompts uniform in [%d, %d], outputs exponential with mean %.0f capped at %d\n",
      o.min_prompt, o.max_prompt, o.mean_output, o.max_output);
  std::printf(
      "model: random llama, %lld params (hidden %lld, %d layers, vocab %lld); KV %d tokens, "
      "max_model_len %d, max_num_seqs %d, %d requests, %d repeats\n\n",
      static_cast<long long>(shape.TotalParams()), static_cast<long long>(shape.hidden_size),
      shape.num_layers, static_cast<long long>(shape.vocab_size), o.kv_tokens, o.max_model_len,
      o.max_num_seqs, o.requests, o.repeats);
  std::printf("%-11s | %10s | %9s | %9s | %7s | %-19s | %s\n", "workload", "metric", "continuous",
              "static", "ratio", "TTFT p50 c / s (s)", "TPOT p50 c / s (ms)");
  json out;
  WorkloadSpec spec;
  spec.num_requests = o.requests;
  spec.vocab_size = shape.vocab_size;
  spec.min_prompt = o.min_prompt;
  spec.max_prompt = o.max_prompt;
  spec.mean_output = o.mean_output;
  spec.max_output = o.max_output;
  spec.rate = 0;
  if (absl::Status s = Compare(scratch->path(), o, spec, "saturation", &out); !s.ok()) return s;
  // Latency at a moderate load: by default half of what continuous batching sustains.
  spec.rate = o.rate > 0
                  ? o.rate
                  : 0.5 * out["saturation"]["continuous"]["output_tokens_per_s"].get<double>() /
                        spec.mean_output;
  out["poisson_rate"] = spec.rate;
  std::fprintf(stderr, "  poisson rate: %.2f requests/s\n", spec.rate);
  if (absl::Status s = Compare(scratch->path(), o, spec, "poisson", &out); !s.ok()) return s;
  // Shared system prompt: the prefix cache serves most prompt tokens.
  WorkloadSpec shared = spec;
  shared.rate = 0;
  shared.shared_prefix = 192;
  shared.min_prompt = 200;
  shared.max_prompt = 256;
  shared.max_output = std::min(spec.max_output, o.max_model_len - shared.max_prompt);
  auto prefix_run = RunOnce(scratch->path(), o, false, MakeWorkload(shared));
  if (!prefix_run.ok()) return prefix_run.status();
  out["shared_prefix"] = ToJson(*prefix_run);
  const json& c = out["saturation"]["continuous"];
  std::printf(
      "\nscheduler (plan + commit + sampling bookkeeping), saturation, continuous: %.1f us/step "
      "of CPU time = %.3f%% of %.2f ms/step of model time (wall clock: %.1f us/step = %.3f%%)\n",
      c["scheduler_cpu_us_per_step"].get<double>(),
      100 * c["scheduler_cpu_fraction_of_model_time"].get<double>(),
      c["model_ms_per_step"].get<double>(), c["scheduler_us_per_step"].get<double>(),
      100 * c["scheduler_fraction_of_model_time"].get<double>());
  std::printf(
      "prefix cache on a 192-token shared prefix: %.1f%% of prompt tokens served from cache\n",
      100 * prefix_run->prefix_hit_rate);
  if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::bench::Options o;
  ropewire::base::CliFlags flags(
      "usage: ropewire-bench-serving [--requests N] [--repeats N] [--json PATH]");
  flags.Add("requests", &o.requests, "requests per run");
  flags.Add("rate", &o.rate, "Poisson arrival rate (requests/s) of the latency workload");
  flags.Add("repeats", &o.repeats, "interleaved runs of each mode");
  flags.Add("threads", &o.threads, "CPU threads (0: one per core)");
  flags.Add("kv-tokens", &o.kv_tokens, "KV cache capacity in tokens (same for both modes)");
  flags.Add("max-model-len", &o.max_model_len,
            "per-request length limit (static mode reserves it)");
  flags.Add("max-num-seqs", &o.max_num_seqs, "sequences per step (static: batch size)");
  flags.Add("max-num-batched-tokens", &o.max_num_batched_tokens, "tokens per step");
  flags.Add("json", &o.json_path, "write results as JSON here");
  flags.Add("min-prompt", &o.min_prompt, "shortest prompt (uniform between min and max)");
  flags.Add("max-prompt", &o.max_prompt, "longest prompt");
  flags.Add("mean-output", &o.mean_output, "mean of the exponential output lengths");
  flags.Add("max-output", &o.max_output, "cap on output lengths");
  flags.Add("scratch", &o.scratch, "where the random model is written (removed afterwards)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok() || flags.help_requested()) {
    std::cerr << (s.ok() ? "" : std::string(s.message()) + "\n") << flags.Help();
    return s.ok() ? 0 : 2;
  }
  absl::Status status = ropewire::bench::Run(o);
  if (!status.ok()) {
    std::cerr << "ropewire-bench-serving: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
