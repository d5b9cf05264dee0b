// ropewire-bench-model: single-stream decode and whole-prompt prefill on random Llama-shaped f32
// checkpoints generated at bench time, against the machine's read bandwidth and FMA peak probed in
// the same run. See bench/model/README.md for what each number means.
//
//   ropewire-bench-model [--models small,large] [--threads 2] [--json out.json]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "base/cli_flags.h"
#include "base/status_macros.h"
#include "bench/model/machine_probes.h"
#include "bench/model/model_bench.h"
#include "bench/model/random_llama.h"
#include "nlohmann/json.hpp"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  std::string models = "small,large";
  std::string phases = "decode,prefill";
  int threads = 2;
  int decode_reps = 5;
  int decode_steps = 64;
  int prompt_len = 32;
  int prefill_reps = 3;
  int prefill_tokens = 512;
  int probe_mib = 1024;
  double fma_seconds = 0.25;
  std::string scratch_dir;
  int64_t seed = 1234;
  std::string json_path;
  bool decode = true, prefill = true;  // from `phases`
};

void Register(base::CliFlags& flags, Options& o) {
  flags.Add("models", &o.models, "comma-separated model shapes: small (112M), large (501M)");
  flags.Add("phases", &o.phases, "comma-separated phases to run: decode, prefill");
  flags.Add("threads", &o.threads, "CPU threads for the model and the probes");
  flags.Add("decode-reps", &o.decode_reps, "decode repetitions, each after one bandwidth probe");
  flags.Add("decode-steps", &o.decode_steps, "decode steps timed per repetition");
  flags.Add("prompt-len", &o.prompt_len,
            "prompt tokens prefilled (untimed) before each decode run");
  flags.Add("prefill-reps", &o.prefill_reps, "prefill repetitions, each after one FMA probe");
  flags.Add("prefill-tokens", &o.prefill_tokens,
            "prompt tokens processed in the timed prefill step");
  flags.Add("probe-mib", &o.probe_mib, "size of the read-bandwidth probe's buffer in MiB");
  flags.Add("fma-seconds", &o.fma_seconds, "duration of each FMA probe run");
  flags.Add("scratch-dir", &o.scratch_dir,
            "where checkpoints are written (default: $TMPDIR or /tmp)");
  flags.Add("seed", &o.seed, "seed of the random weights and prompts");
  flags.Add("json", &o.json_path, "also write the results as JSON to this path");
}

absl::Status Validate(Options& o) {
  if (o.threads < 1 || o.decode_reps < 1 || o.decode_steps < 1 || o.prompt_len < 1 ||
      o.prefill_reps < 1 || o.prefill_tokens < 1 || o.probe_mib < 2 || o.fma_seconds <= 0) {
    return absl::InvalidArgumentError("counts must be positive (--probe-mib at least 2)");
  }
  o.decode = o.prefill = false;
  for (absl::string_view phase : absl::StrSplit(o.phases, ',', absl::SkipEmpty())) {
    if (phase == "decode") {
      o.decode = true;
    } else if (phase == "prefill") {
      o.prefill = true;
    } else {
      return absl::InvalidArgumentError("--phases takes decode and/or prefill");
    }
  }
  if (o.scratch_dir.empty()) o.scratch_dir = std::filesystem::temp_directory_path().string();
  return absl::OkStatus();
}

double SecondsSince(Clock::time_point begin) {
  return std::chrono::duration<double>(Clock::now() - begin).count();
}

struct ModelResult {
  LlamaShape shape;
  double write_seconds = 0, load_seconds = 0;
  double weights_in_huge_pages = 0;  // fraction of the weight bytes
  // Taken in pairs: one probe pass right before each decode or prefill repetition.
  ProbeSamples plain_read_gbps, prefetched_read_gbps, read_gbps;  // read_gbps: best of the two
  ProbeSamples decode_tokens_per_s;
  ProbeSamples fma_gflops, prefill_seconds;
  DecodeTraffic traffic;
  PrefillFlops flops;
};

// Writes the checkpoint, loads it and deletes the files (the runner keeps its own copy).
absl::StatusOr<std::unique_ptr<ModelBench>> BuildModel(const Options& o, ModelResult* result) {
  ASSIGN_OR_RETURN(ScratchDir dir,
                   ScratchDir::Create(o.scratch_dir, "ropewire-bench-" + result->shape.name + "-"));
  Clock::time_point begin = Clock::now();
  RETURN_IF_ERROR(WriteRandomLlama(result->shape, uint64_t(o.seed), dir.path()));
  result->write_seconds = SecondsSince(begin);
  const int64_t huge_before = AnonHugePageBytes();
  begin = Clock::now();
  const int max_tokens = std::max(o.prefill_tokens, o.prompt_len + o.decode_steps + 1);
  ASSIGN_OR_RETURN(auto bench, ModelBench::Load(dir.path(), o.threads, max_tokens));
  result->load_seconds = SecondsSince(begin);
  const double weight_bytes = double(result->shape.TotalParams()) * sizeof(float);
  result->weights_in_huge_pages =
      huge_before < 0 ? 0.0
                      : std::min(1.0, double(AnonHugePageBytes() - huge_before) / weight_bytes);
  dir.Remove();
  return bench;
}

// Each decode repetition runs right after a bandwidth-probe pass and each prefill repetition
// right after an FMA-probe run, so every rate has a machine figure taken seconds before it.
absl::Status MeasureModel(const Options& o, ReadBandwidthProbe& probe, ModelResult* result) {
  ASSIGN_OR_RETURN(auto bench, BuildModel(o, result));
  std::fprintf(stderr, "%s: written in %.1f s, loaded in %.1f s, %.0f%% of weights in huge pages\n",
               result->shape.name.c_str(), result->write_seconds, result->load_seconds,
               100.0 * result->weights_in_huge_pages);
  // Warm-up: first touch of workspaces and KV pages, thread pool start.
  RETURN_IF_ERROR(bench->DecodeRun(o.prompt_len, 4, uint64_t(o.seed)).status());
  if (o.prefill) RETURN_IF_ERROR(bench->PrefillRun(o.prefill_tokens, uint64_t(o.seed)).status());
  for (int rep = 0; o.decode && rep < o.decode_reps; ++rep) {
    const ReadBandwidthProbe::Rates rates = probe.Pass();
    result->plain_read_gbps.values.push_back(rates.plain);
    result->prefetched_read_gbps.values.push_back(rates.prefetched);
    result->read_gbps.values.push_back(rates.best());
    ASSIGN_OR_RETURN(double rate, bench->DecodeRun(o.prompt_len, o.decode_steps, o.seed + rep));
    result->decode_tokens_per_s.values.push_back(rate);
  }
  for (int rep = 0; o.prefill && rep < o.prefill_reps; ++rep) {
    result->fma_gflops.values.push_back(MeasureFmaPeak(o.threads, o.fma_seconds));
    ASSIGN_OR_RETURN(double seconds, bench->PrefillRun(o.prefill_tokens, o.seed + rep));
    result->prefill_seconds.values.push_back(seconds);
  }
  // Mean cache length over the timed steps: the prompt plus half the steps, plus the new token.
  result->traffic = DecodeBytesPerToken(result->shape, o.prompt_len + (o.decode_steps + 1) / 2.0);
  result->flops = PrefillFlopCount(result->shape, o.prefill_tokens);
  return absl::OkStatus();
}

double DecodeGbps(const ModelResult& r) {
  return double(r.traffic.total()) * r.decode_tokens_per_s.Median() / 1e9;
}
double PrefillGflops(const ModelResult& r) {
  return r.flops.total() / r.prefill_seconds.Median() / 1e9;
}

void PrintTable(const std::vector<ModelResult>& results, const Options& o) {
  std::printf("\n%-6s %7s %7s | %7s %8s %7s %7s %6s | %8s %8s %8s %6s\n", "model", "params",
              "weights", "decode", "GB/tok", "GB/s", "probe", "of BW", "prefill", "GFLOP/s",
              "FMA pk", "of pk");
  std::printf("%-6s %7s %7s | %7s %8s %7s %7s %6s | %8s %8s %8s %6s\n", "", "(M)", "(GB)", "tok/s",
              "", "", "GB/s", "", "tok/s", "", "GFLOP/s", "");
  for (const ModelResult& r : results) {
    std::printf("%-6s %7.1f %7.2f |", r.shape.name.c_str(), r.shape.TotalParams() / 1e6,
                r.shape.TotalParams() * 4 / 1e9);
    if (o.decode) {
      const double probe_gbps = r.read_gbps.Median();
      std::printf(" %7.2f %8.3f %7.1f %7.1f %5.1f%% |", r.decode_tokens_per_s.Median(),
                  r.traffic.total() / 1e9, DecodeGbps(r), probe_gbps,
                  100.0 * DecodeGbps(r) / probe_gbps);
    } else {
      std::printf(" %7s %8s %7s %7s %6s |", "-", "-", "-", "-", "-");
    }
    if (o.prefill) {
      const double fma = r.fma_gflops.Median();
      std::printf(" %8.1f %8.1f %8.1f %5.1f%%\n", o.prefill_tokens / r.prefill_seconds.Median(),
                  PrefillGflops(r), fma, 100.0 * PrefillGflops(r) / fma);
    } else {
      std::printf(" %8s %8s %8s %6s\n", "-", "-", "-", "-");
    }
  }
  std::printf(
      "\ndecode: %d steps after a %d-token prompt, median of %d; prefill: %d tokens in one "
      "step, median of %d; %d threads\n",
      o.decode_steps, o.prompt_len, o.decode_reps, o.prefill_tokens, o.prefill_reps, o.threads);
}

json DecodeJson(const ModelResult& r, const Options& o) {
  const double probe_gbps = r.read_gbps.Median();
  return {{"prompt_len", o.prompt_len},
          {"steps", o.decode_steps},
          {"tokens_per_s", r.decode_tokens_per_s.Median()},
          {"tokens_per_s_samples", r.decode_tokens_per_s.values},
          {"weight_bytes_per_token", r.traffic.weight_bytes},
          {"kv_bytes_per_token", r.traffic.kv_bytes},
          {"achieved_gbps", DecodeGbps(r)},
          {"probe_read_gbps", probe_gbps},
          {"probe_read_gbps_samples", r.read_gbps.values},
          {"probe_plain_read_gbps_samples", r.plain_read_gbps.values},
          {"probe_prefetched_read_gbps_samples", r.prefetched_read_gbps.values},
          {"fraction_of_read_bandwidth", DecodeGbps(r) / probe_gbps}};
}

json PrefillJson(const ModelResult& r, const Options& o) {
  const double fma = r.fma_gflops.Median();
  return {{"tokens", o.prefill_tokens},
          {"seconds", r.prefill_seconds.Median()},
          {"seconds_samples", r.prefill_seconds.values},
          {"tokens_per_s", o.prefill_tokens / r.prefill_seconds.Median()},
          {"matmul_flops", r.flops.matmul},
          {"attention_flops", r.flops.attention},
          {"achieved_gflops", PrefillGflops(r)},
          {"probe_fma_gflops", fma},
          {"probe_fma_gflops_samples", r.fma_gflops.values},
          {"fraction_of_fma_peak", PrefillGflops(r) / fma}};
}

json ModelJson(const ModelResult& r, const Options& o) {
  const LlamaShape& s = r.shape;
  json model = {
      {"name", s.name},
      {"shape",
       {{"vocab_size", s.vocab_size},
        {"hidden_size", s.hidden_size},
        {"intermediate_size", s.intermediate_size},
        {"num_layers", s.num_layers},
        {"num_heads", s.num_heads},
        {"num_kv_heads", s.num_kv_heads}}},
      {"params", s.TotalParams()},
      {"weight_bytes_f32", s.TotalParams() * 4},
      {"weights_in_huge_pages", r.weights_in_huge_pages},
      {"write_seconds", r.write_seconds},
      {"load_seconds", r.load_seconds},
  };
  if (o.decode) model["decode"] = DecodeJson(r, o);
  if (o.prefill) model["prefill"] = PrefillJson(r, o);
  return model;
}

absl::Status WriteJson(const Options& o, const std::vector<ModelResult>& results,
                       const ProbeSamples& start_read, double start_fma) {
  json models = json::array();
  for (const ModelResult& r : results) models.push_back(ModelJson(r, o));
  const json doc = {
      {"threads", o.threads},
      {"probes",
       {{"read_kernel", ReadBandwidthProbe::KernelName()},
        {"read_buffer_bytes", int64_t(o.probe_mib) << 20},
        {"fma_kernel", FmaKernelName()},
        {"start_read_gbps", start_read.Median()},
        {"start_read_gbps_samples", start_read.values},
        {"start_fma_gflops", start_fma}}},
      {"models", models},
  };
  std::ofstream out(o.json_path, std::ios::trunc);
  out << doc.dump(2) << "\n";
  if (!out) return absl::InternalError(o.json_path + ": write failed");
  return absl::OkStatus();
}

absl::Status Run(const Options& o) {
  std::vector<ModelResult> results;
  for (absl::string_view name : absl::StrSplit(o.models, ',', absl::SkipEmpty())) {
    ASSIGN_OR_RETURN(LlamaShape shape, NamedShape(std::string(name)));
    ModelResult result;
    result.shape = shape;
    results.push_back(result);
  }
  ASSIGN_OR_RETURN(ReadBandwidthProbe probe,
                   ReadBandwidthProbe::Create(int64_t(o.probe_mib) << 20, o.threads));
  ProbeSamples start_read;
  for (int i = 0; i < 5; ++i) start_read.values.push_back(probe.Pass().best());
  const double start_fma = MeasureFmaPeak(o.threads, o.fma_seconds);
  std::fprintf(stderr, "probes, %d threads: read %.1f GB/s (%s), FMA %.1f GFLOP/s (%s)\n",
               o.threads, start_read.Median(), ReadBandwidthProbe::KernelName().c_str(), start_fma,
               FmaKernelName().c_str());
  for (ModelResult& result : results) RETURN_IF_ERROR(MeasureModel(o, probe, &result));
  PrintTable(results, o);
  if (!o.json_path.empty()) RETURN_IF_ERROR(WriteJson(o, results, start_read, start_fma));
  return absl::OkStatus();
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::base::CliFlags flags(
      "ropewire-bench-model: decode and prefill on random Llama-shaped f32 checkpoints written at "
      "bench time, against probes of the machine's read bandwidth and FMA peak");
  ropewire::bench::Options options;
  ropewire::bench::Register(flags, options);
  absl::Status status = flags.Parse(argc, argv);
  if (status.ok() && flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (status.ok()) status = ropewire::bench::Validate(options);
  if (status.ok()) status = ropewire::bench::Run(options);
  if (!status.ok()) {
    std::cerr << "ropewire-bench-model: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
