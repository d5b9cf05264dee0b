// ropewire-bench-gguf: single-stream decode and whole-prompt prefill of one model file (a GGUF
// file or a model directory) served with each of several --weight-dtype choices, e.g. a GGUF
// Q4_1 file as stored against the same file dequantized to f32 at load. See README.md here.
//
//   ropewire-bench-gguf --model FILE.gguf [--weight-dtypes auto,f32] [--threads 2]
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "base/cli_flags.h"
#include "base/status_macros.h"
#include "bench/model/machine_probes.h"
#include "bench/model/model_bench.h"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  std::string weight_dtypes = "auto,f32";
  int threads = 2;
  int decode_reps = 3;
  int decode_steps = 64;
  int prompt_len = 32;
  int prefill_reps = 2;
  int prefill_tokens = 512;
  int64_t seed = 1234;
};

void Register(base::CliFlags& flags, Options& o) {
  flags.Add("model", &o.model, "a GGUF file or a Hugging Face model directory");
  flags.Add("weight-dtypes", &o.weight_dtypes,
            "comma-separated --weight-dtype choices to load the model with (auto: as stored)");
  flags.Add("threads", &o.threads, "CPU threads for the model");
  flags.Add("decode-reps", &o.decode_reps, "decode repetitions (the median is reported)");
  flags.Add("decode-steps", &o.decode_steps, "decode steps timed per repetition");
  flags.Add("prompt-len", &o.prompt_len, "prompt tokens prefilled before each decode run");
  flags.Add("prefill-reps", &o.prefill_reps, "prefill repetitions (the median is reported)");
  flags.Add("prefill-tokens", &o.prefill_tokens, "prompt tokens of the timed prefill step");
  flags.Add("seed", &o.seed, "seed of the random prompts");
}

struct Result {
  std::string weight_dtype;
  double load_seconds = 0;
  ProbeSamples decode_tokens_per_s, prefill_seconds;
};

absl::StatusOr<Result> Measure(const Options& o, const std::string& weight_dtype) {
  Result r;
  r.weight_dtype = weight_dtype;
  const Clock::time_point begin = Clock::now();
  const int max_tokens = std::max(o.prefill_tokens, o.prompt_len + o.decode_steps + 1);
  model::ExecutorOptions options;
  options.num_threads = o.threads;
  options.weight_dtype = weight_dtype;
  ASSIGN_OR_RETURN(auto bench, ModelBench::Load(o.model, options, max_tokens));
  r.load_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  // Warm-up: first touch of the mapped weights, workspaces and KV pages, thread pool start.
  RETURN_IF_ERROR(bench->DecodeRun(o.prompt_len, 4, uint64_t(o.seed)).status());
  RETURN_IF_ERROR(bench->PrefillRun(o.prefill_tokens, uint64_t(o.seed)).status());
  for (int rep = 0; rep < o.decode_reps; ++rep) {
    ASSIGN_OR_RETURN(double rate, bench->DecodeRun(o.prompt_len, o.decode_steps, o.seed + rep));
    r.decode_tokens_per_s.values.push_back(rate);
  }
  for (int rep = 0; rep < o.prefill_reps; ++rep) {
    ASSIGN_OR_RETURN(double seconds, bench->PrefillRun(o.prefill_tokens, o.seed + rep));
    r.prefill_seconds.values.push_back(seconds);
  }
  return r;
}

absl::Status Run(const Options& o) {
  if (o.model.empty()) return absl::InvalidArgumentError("--model is required");
  if (o.threads < 1 || o.decode_reps < 1 || o.decode_steps < 1 || o.prompt_len < 1 ||
      o.prefill_reps < 1 || o.prefill_tokens < 1) {
    return absl::InvalidArgumentError("counts must be positive");
  }
  std::vector<Result> results;
  for (absl::string_view dtype : absl::StrSplit(o.weight_dtypes, ',', absl::SkipEmpty())) {
    ASSIGN_OR_RETURN(Result r, Measure(o, std::string(dtype)));
    std::fprintf(stderr, "%s: loaded in %.2f s\n", r.weight_dtype.c_str(), r.load_seconds);
    results.push_back(std::move(r));
  }
  std::printf("\n%s\n%-8s %8s %14s %14s\n", o.model.c_str(), "weights", "load s", "decode tok/s",
              "prefill tok/s");
  for (const Result& r : results) {
    std::printf("%-8s %8.2f %14.1f %14.1f\n", r.weight_dtype.c_str(), r.load_seconds,
                r.decode_tokens_per_s.Median(), o.prefill_tokens / r.prefill_seconds.Median());
  }
  std::printf(
      "\ndecode: %d steps after a %d-token prompt, median of %d; prefill: %d tokens in one "
      "step, median of %d; %d threads\n",
      o.decode_steps, o.prompt_len, o.decode_reps, o.prefill_tokens, o.prefill_reps, o.threads);
  return absl::OkStatus();
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::base::CliFlags flags(
      "ropewire-bench-gguf: decode and prefill of one model file under several --weight-dtype "
      "choices");
  ropewire::bench::Options options;
  ropewire::bench::Register(flags, options);
  absl::Status status = flags.Parse(argc, argv);
  if (status.ok() && flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (status.ok()) status = ropewire::bench::Run(options);
  if (!status.ok()) {
    std::cerr << "ropewire-bench-gguf: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
