// `ropewire-cli load`: flags → LoadOptions, the model's limits from GetModelInfo, the run, and
// the report (summary on stdout, JSON to --json PATH).
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "client/commands.h"
#include "client/load_generator.h"
#include "client/load_stats.h"
#include "client/request_flags.h"
#include "client/rpc_util.h"
#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::client {
namespace {

struct LoadFlags {
  int concurrency = 1;
  double rate = 0;
  int64_t requests = 0;
  double duration_s = 0;
  int connections = 1;
  std::string prompt_len = "32";
  std::string output_len = "64";
  std::string prompt;
  int64_t seed = 0;
  bool unary = false;
  std::string json_path;
  SamplingFlags sampling;
};

void RegisterLoadFlags(base::CliFlags& flags, LoadFlags* f) {
  flags.Add("concurrency", &f->concurrency, "closed loop: requests kept in flight");
  flags.Add("rate", &f->rate,
            "open loop: Poisson arrivals at this many requests/s (0: closed loop)");
  flags.Add("requests", &f->requests, "requests to send (0 with no --duration: 100)");
  flags.Add("duration", &f->duration_s, "seconds to keep sending; in-flight requests then finish");
  flags.Add("connections", &f->connections, "channels (TCP connections) to spread requests over");
  flags.Add("prompt-len", &f->prompt_len,
            "random prompt length: N, uniform:A,B or exponential:MEAN[,CAP]");
  flags.Add("output-len", &f->output_len,
            "max_tokens per request: N, uniform:A,B or exponential:MEAN[,CAP]");
  flags.Add("prompt", &f->prompt, "send this text as every prompt instead of random token ids");
  flags.Add("seed", &f->seed, "seed of the random prompts, lengths and arrival times");
  flags.Add("unary", &f->unary,
            "use unary Generate instead of GenerateStream (TTFT is then end-to-end)");
  flags.Add("json", &f->json_path, "also write the report as JSON to this path (- for stdout)");
  f->sampling.ignore_eos = true;  // lengths come from --output-len, not from when the model stops
  RegisterSamplingFlags(flags, &f->sampling, /*per_request_length_and_seed=*/false);
}

absl::Status CheckLoadFlags(const LoadFlags& f) {
  if (f.concurrency < 1) return absl::InvalidArgumentError("--concurrency must be >= 1");
  if (f.rate < 0) return absl::InvalidArgumentError("--rate must be >= 0");
  if (f.requests < 0) return absl::InvalidArgumentError("--requests must be >= 0");
  if (f.duration_s < 0) return absl::InvalidArgumentError("--duration must be >= 0");
  if (f.connections < 1) return absl::InvalidArgumentError("--connections must be >= 1");
  if (f.seed < 0) return absl::InvalidArgumentError("--seed must be >= 0");
  return absl::OkStatus();
}

absl::StatusOr<LoadOptions> BuildLoadOptions(const LoadFlags& f, const GlobalFlags& global) {
  if (absl::Status s = CheckLoadFlags(f); !s.ok()) return s;
  LoadOptions options;
  options.connection = global.connection;
  options.connections = f.connections;
  options.concurrency = f.concurrency;
  options.rate = f.rate;
  options.requests = f.requests == 0 && f.duration_s == 0 ? 100 : f.requests;
  options.duration_s = f.duration_s;
  options.timeout_s = global.TimeoutOr(600);
  options.stream = !f.unary;
  options.seed = static_cast<uint64_t>(f.seed);
  options.prompt_text = f.prompt;
  auto prompt_len = LengthDistribution::Parse(f.prompt_len, "prompt-len");
  if (!prompt_len.ok()) return prompt_len.status();
  auto output_len = LengthDistribution::Parse(f.output_len, "output-len");
  if (!output_len.ok()) return output_len.status();
  options.prompt_len = *prompt_len;
  options.output_len = *output_len;
  if (absl::Status s = ApplySamplingFlags(f.sampling, &options.base_request); !s.ok()) return s;
  return options;
}

nlohmann::json ConfigJson(const LoadOptions& o, const v1::ModelInfo& info) {
  return {{"target", o.connection.target},
          {"mode", o.rate > 0 ? "poisson" : "closed-loop"},
          {"concurrency", o.rate > 0 ? 0 : o.concurrency},
          {"rate", o.rate},
          {"requests", o.requests},
          {"duration_s", o.duration_s},
          {"connections", o.connections},
          {"stream", o.stream},
          {"prompt_len", o.prompt_text.empty() ? o.prompt_len.ToString() : "text"},
          {"output_len", o.output_len.ToString()},
          {"ignore_eos", o.base_request.ignore_eos()},
          {"seed", o.seed},
          {"model_type", info.model_type()},
          {"model_path", info.model_path()},
          {"vocab_size", info.vocab_size()},
          {"device", info.device()}};
}

int WriteJson(const std::string& path, const nlohmann::json& report) {
  if (path == "-") {
    std::cout << report.dump(2) << "\n";
    return kExitOk;
  }
  std::ofstream out(path);
  out << report.dump(2) << "\n";
  if (!out) {
    std::cerr << "ropewire-cli load: cannot write " << path << "\n";
    return kExitRpcError;
  }
  return kExitOk;
}

}  // namespace

int RunLoadCommand(const std::vector<std::string>& raw_args) {
  std::vector<std::string> args = raw_args;
  LoadFlags f;
  auto stops = ExtractRepeatedFlag("stop", &args);
  if (!stops.ok()) {
    std::cerr << "ropewire-cli load: " << stops.status().message() << "\n";
    return kExitUsage;
  }
  f.sampling.stop = *stops;
  GlobalFlags global;
  base::CliFlags flags(
      "usage: ropewire-cli load [--concurrency N | --rate R] [--requests N | --duration S] "
      "[flags]");
  RegisterLoadFlags(flags, &f);
  if (int code = ParseCommandFlags("load", flags, &global, args); code >= 0) return code;
  auto options = BuildLoadOptions(f, global);
  if (!options.ok()) {
    std::cerr << "ropewire-cli load: " << options.status().message() << "\n";
    return kExitUsage;
  }
  // Random prompts must stay inside the served vocabulary and length.
  v1::ModelInfo info;
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(30));
  Authorize(&context, global.connection);
  grpc::Status status = v1::Inference::NewStub(MakeChannel(global.connection))
                            ->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) {
    std::cerr << "ropewire-cli: load: GetModelInfo (" << global.target()
              << ") failed: " << DescribeStatus(status) << "\n";
    return kExitRpcError;
  }
  if (!options->prompt_text.empty() && !info.has_tokenizer()) {
    std::cerr << "ropewire-cli load: --prompt needs a server with a tokenizer; this one serves "
                 "token ids only\n";
    return kExitUsage;
  }
  options->vocab_size = static_cast<int>(info.vocab_size());
  options->max_model_len = static_cast<int>(info.max_model_len());
  auto result = RunLoad(*options);
  if (!result.ok()) {
    std::cerr << "ropewire-cli: load: " << result.status().message() << "\n";
    return kExitRpcError;
  }
  const LoadReport report = BuildReport(result->records, result->duration_s);
  if (f.json_path != "-") std::cout << FormatReport(report);
  if (!f.json_path.empty()) {
    if (int code = WriteJson(f.json_path, ReportToJson(report, ConfigJson(*options, info)));
        code != kExitOk) {
      return code;
    }
  }
  return report.ok == report.requests ? kExitOk : kExitRpcError;
}

}  // namespace ropewire::client
