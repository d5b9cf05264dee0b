// ropewire-bench-model: single-stream decode and whole-prompt prefill on random Llama-shaped
// checkpoints generated at bench time, in each weight format asked for, against the machine's
// read bandwidth and FMA peak probed in the same run, with the resident memory of each load. See
// bench/model/README.md for what each number means.
//
//   ropewire-bench-model [--models small,large] [--formats f32,bf16,int8,int4] [--threads 2]
//                        [--json out.json]
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
  std::string formats;  // empty: the one format --weight-dtype and --quantization give
  std::string weight_dtype = "auto";
  std::string quantization = "none";
  std::string kv_cache_dtype = "auto";
  std::string checkpoint_dtype = "f32";
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
  flags.Add("models", &o.models,
            "comma-separated model shapes: small (112M), large (501M), llama3-3b (3.6B), llama3-8b "
            "(8.0B)");
  flags.Add("formats", &o.formats,
            "comma-separated weight formats, each loaded from the same checkpoint: f32, bf16, "
            "f16, int8, int4, q4_1 (default: the one --weight-dtype and --quantization give)");
  flags.Add("weight-dtype", &o.weight_dtype, "auto (as stored), f32, bf16, f16");
  flags.Add("quantization", &o.quantization, "none, int8 (Q8_0), int4 (Q4_0), q4_1");
  flags.Add("kv-cache-dtype", &o.kv_cache_dtype, "auto, f32, bf16, f16 (every format)");
  flags.Add("checkpoint-dtype", &o.checkpoint_dtype,
            "dtype the random checkpoint is written in: f32, bf16 (as most published models)");
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

// One weight format: the storage flags it stands for.
struct Format {
  std::string name;
  std::string weight_dtype = "auto";
  std::string quantization = "none";
};

absl::StatusOr<std::vector<Format>> ParseFormats(const Options& o) {
  std::vector<Format> formats;
  if (o.formats.empty()) {
    formats.push_back({o.quantization != "none" ? o.quantization : o.weight_dtype, o.weight_dtype,
                       o.quantization});
    return formats;
  }
  for (absl::string_view name : absl::StrSplit(o.formats, ',', absl::SkipEmpty())) {
    Format f{std::string(name)};
    if (name == "f32" || name == "bf16" || name == "f16") {
      f.weight_dtype = f.name;
    } else if (name == "int8" || name == "int4" || name == "q8_0" || name == "q4_0" ||
               name == "q4_1") {
      f.quantization = f.name;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--formats: unknown format \"", name,
                                                     "\" (f32, bf16, f16, int8, int4, q4_1)"));
    }
    formats.push_back(f);
  }
  return formats;
}

absl::StatusOr<model::DType> CheckpointDtype(const Options& o) {
  if (o.checkpoint_dtype == "f32") return model::DType::kF32;
  if (o.checkpoint_dtype == "bf16") return model::DType::kBF16;
  return absl::InvalidArgumentError("--checkpoint-dtype must be f32 or bf16");
}

struct ModelResult {
  LlamaShape shape;
  Format format;
  StorageFormats storage;
  int64_t weight_bytes = 0;   // the loaded weights, by format
  int64_t load_peak_rss = 0;  // peak resident growth while loading
  int64_t loaded_rss = 0;     // resident growth once loaded
  double write_seconds = 0, load_seconds = 0;
  double weights_in_huge_pages = 0;  // fraction of the weight bytes
  // Taken in pairs: one probe pass right before each decode or prefill repetition.
  ProbeSamples plain_read_gbps, prefetched_read_gbps, read_gbps;  // read_gbps: best of the two
  ProbeSamples decode_tokens_per_s;
  ProbeSamples fma_gflops, prefill_seconds;
  DecodeTraffic traffic;
  PrefillFlops flops;
};

// Loads the checkpoint in `dir` in the result's format, recording time and resident memory.
absl::StatusOr<std::unique_ptr<ModelBench>> LoadModel(const Options& o, const std::string& dir,
                                                      ModelResult* result) {
  model::ExecutorOptions options;
  options.num_threads = o.threads;
  options.weight_dtype = result->format.weight_dtype;
  options.quantization = result->format.quantization;
  options.kv_cache_dtype = o.kv_cache_dtype;
  ASSIGN_OR_RETURN(const model::DType stored, CheckpointDtype(o));
  ASSIGN_OR_RETURN(result->storage, ResolveStorage(options, stored));
  result->weight_bytes = WeightBytes(result->shape, result->storage);
  // Hand the previous format's freed memory back to the system, so that this load's growth is
  // its own and not a reuse of what the allocator kept.
  malloc_trim(0);
  const int64_t huge_before = AnonHugePageBytes();
  ResetPeakRss();
  const MemoryUse before = CurrentMemoryUse();
  const Clock::time_point begin = Clock::now();
  const int max_tokens = std::max(o.prefill_tokens, o.prompt_len + o.decode_steps + 1);
  ASSIGN_OR_RETURN(auto bench, ModelBench::Load(dir, options, max_tokens));
  result->load_seconds = SecondsSince(begin);
  const MemoryUse after = CurrentMemoryUse();
  result->load_peak_rss = after.peak_rss_bytes - before.rss_bytes;
  result->loaded_rss = after.rss_bytes - before.rss_bytes;
  result->weights_in_huge_pages =
      huge_before < 0
          ? 0.0
          : std::min(1.0, double(AnonHugePageBytes() - huge_before) / result->weight_bytes);
  return bench;
}

// Each decode repetition runs right after a bandwidth-probe pass and each prefill repetition
// right after an FMA-probe run, so every rate has a machine figure taken seconds before it.
absl::Status MeasureModel(const Options& o, const std::string& dir, ReadBandwidthProbe& probe,
                          ModelResult* result) {
  ASSIGN_OR_RETURN(auto bench, LoadModel(o, dir, result));
  std::fprintf(stderr,
               "%s %s: loaded in %.1f s, weights %.2f GB, resident +%.2f GB (peak +%.2f GB while "
               "loading), %.0f%% of weights in huge pages\n",
               result->shape.name.c_str(), result->format.name.c_str(), result->load_seconds,
               result->weight_bytes / 1e9, result->loaded_rss / 1e9, result->load_peak_rss / 1e9,
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
  result->traffic = DecodeBytesPerToken(result->shape, o.prompt_len + (o.decode_steps + 1) / 2.0,
                                        result->storage);
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
  std::printf("\n%-9s %-5s %7s %7s %7s | %7s %8s %7s %7s %6s | %8s %8s %8s %6s\n", "model", "fmt",
              "params", "weights", "peak", "decode", "GB/tok", "GB/s", "probe", "of BW", "prefill",
              "GFLOP/s", "FMA pk", "of pk");
  std::printf("%-9s %-5s %7s %7s %7s | %7s %8s %7s %7s %6s | %8s %8s %8s %6s\n", "", "", "(M)",
              "(GB)", "RSS/w", "tok/s", "", "", "GB/s", "", "tok/s", "", "GFLOP/s", "");
  for (const ModelResult& r : results) {
    std::printf("%-9s %-5s %7.1f %7.2f %7.2f |", r.shape.name.c_str(), r.format.name.c_str(),
                r.shape.TotalParams() / 1e6, r.weight_bytes / 1e9,
                double(r.load_peak_rss) / r.weight_bytes);
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
      {"format",
       {{"name", r.format.name},
        {"weight_dtype", r.format.weight_dtype},
        {"quantization", r.format.quantization},
        {"projections", kernels::WeightFormatName(r.storage.projections)},
        {"lm_head", kernels::WeightFormatName(r.storage.lm_head)},
        {"embedding", kernels::WeightFormatName(r.storage.embedding)},
        {"kv_value_bytes", r.storage.kv_value_bytes}}},
      {"weight_bytes", r.weight_bytes},
      {"load_peak_rss_bytes", r.load_peak_rss},
      {"loaded_rss_bytes", r.loaded_rss},
      {"shape",
       {{"vocab_size", s.vocab_size},
        {"hidden_size", s.hidden_size},
        {"intermediate_size", s.intermediate_size},
        {"num_layers", s.num_layers},
        {"num_heads", s.num_heads},
        {"num_kv_heads", s.num_kv_heads}}},
      {"params", s.TotalParams()},
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

// Writes the shape's checkpoint once and measures every format loaded from it.
absl::Status MeasureShape(const Options& o, const LlamaShape& shape,
                          const std::vector<Format>& formats, ReadBandwidthProbe& probe,
                          std::vector<ModelResult>* results) {
  ASSIGN_OR_RETURN(ScratchDir dir,
                   ScratchDir::Create(o.scratch_dir, "ropewire-bench-" + shape.name + "-"));
  ASSIGN_OR_RETURN(const model::DType dtype, CheckpointDtype(o));
  const Clock::time_point begin = Clock::now();
  RETURN_IF_ERROR(WriteRandomLlama(shape, uint64_t(o.seed), dir.path(), dtype));
  const double write_seconds = SecondsSince(begin);
  std::fprintf(stderr, "%s: %s checkpoint written in %.1f s\n", shape.name.c_str(),
               o.checkpoint_dtype.c_str(), write_seconds);
  for (const Format& format : formats) {
    ModelResult result;
    result.shape = shape;
    result.format = format;
    result.write_seconds = write_seconds;
    RETURN_IF_ERROR(MeasureModel(o, dir.path(), probe, &result));
    results->push_back(std::move(result));
  }
  return absl::OkStatus();
}

absl::Status Run(const Options& o) {
  std::vector<LlamaShape> shapes;
  for (absl::string_view name : absl::StrSplit(o.models, ',', absl::SkipEmpty())) {
    ASSIGN_OR_RETURN(LlamaShape shape, NamedShape(std::string(name)));
    shapes.push_back(shape);
  }
  ASSIGN_OR_RETURN(const std::vector<Format> formats, ParseFormats(o));
  RETURN_IF_ERROR(CheckpointDtype(o).status());
  std::vector<ModelResult> results;
  ASSIGN_OR_RETURN(ReadBandwidthProbe probe,
                   ReadBandwidthProbe::Create(int64_t(o.probe_mib) << 20, o.threads));
  ProbeSamples start_read;
  for (int i = 0; i < 5; ++i) start_read.values.push_back(probe.Pass().best());
  const double start_fma = MeasureFmaPeak(o.threads, o.fma_seconds);
  std::fprintf(stderr, "probes, %d threads: read %.1f GB/s (%s), FMA %.1f GFLOP/s (%s)\n",
               o.threads, start_read.Median(), ReadBandwidthProbe::KernelName().c_str(), start_fma,
               FmaKernelName().c_str());
  for (const LlamaShape& shape : shapes)
    RETURN_IF_ERROR(MeasureShape(o, shape, formats, probe, &results));
  PrintTable(results, o);
  if (!o.json_path.empty()) RETURN_IF_ERROR(WriteJson(o, results, start_read, start_fma));
  return absl::OkStatus();
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::base::CliFlags flags(
      "ropewire-bench-model: decode and prefill on random Llama-shaped checkpoints written at "
      "bench time, in each weight format, against probes of the machine's read bandwidth and FMA "
      "peak");
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
