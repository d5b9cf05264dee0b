// generate, tokenize, info, stats and health: one RPC each (generate optionally streamed).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/commands.h"
#include "client/message_printer.h"
#include "client/request_flags.h"
#include "client/rpc_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::client {
namespace {

// Generous defaults: a long completion on a CPU can take minutes; health must answer fast
// enough to serve as a container health check.
constexpr double kDefaultCallTimeoutS = 600;
constexpr double kDefaultHealthTimeoutS = 5;

int Fail(const std::string& what, const grpc::Status& status, const GlobalFlags& global) {
  std::cerr << "ropewire-cli: " << what << " (" << global.target()
            << ") failed: " << DescribeStatus(status) << "\n";
  return kExitRpcError;
}

int UsageError(const std::string& command, const std::string& message) {
  std::cerr << "ropewire-cli " << command << ": " << message << "\n";
  return kExitUsage;
}

std::string FinishName(v1::FinishReason reason) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::FinishReason_Name(reason), "FINISH_REASON_"));
}

void PrintLogprobs(const google::protobuf::RepeatedPtrField<v1::GeneratedTokenLogprobs>& logprobs) {
  for (const auto& token : logprobs) {
    std::vector<std::string> top;
    for (const auto& alt : token.top())
      top.push_back(absl::StrCat(alt.token_id(), ":", alt.logprob()));
    std::cout << "  token " << token.token_id() << " logprob " << token.logprob();
    if (!top.empty()) std::cout << "  top " << absl::StrJoin(top, " ");
    std::cout << "\n";
  }
}

void PrintFinish(v1::FinishReason reason, const std::string& stop_string, const v1::Usage& usage) {
  std::cerr << "[finish: " << FinishName(reason);
  if (!stop_string.empty()) std::cerr << " (\"" << stop_string << "\")";
  std::cerr << ", prompt_tokens " << usage.prompt_tokens() << ", completion_tokens "
            << usage.completion_tokens() << "]\n";
}

int GenerateUnary(v1::Inference::Stub& stub, const v1::GenerateRequest& request, bool json,
                  const GlobalFlags& global) {
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultCallTimeoutS));
  Authorize(&context, global.connection);
  v1::GenerateResponse response;
  grpc::Status status = stub.Generate(&context, request, &response);
  if (!status.ok()) return Fail("generate", status, global);
  if (json) {
    std::cout << ToJson(response, true) << "\n";
    return kExitOk;
  }
  if (!response.text().empty()) {
    std::cout << response.text() << "\n";
  } else {
    std::cout << absl::StrJoin(response.token_ids(), " ") << "\n";
  }
  if (response.logprobs_size() > 0) PrintLogprobs(response.logprobs());
  PrintFinish(response.finish_reason(), response.stop_string(), response.usage());
  return kExitOk;
}

// Prints text deltas as they arrive (token ids when the server has no tokenizer); with --json,
// one JSON object per message (JSON Lines).
int GenerateStreaming(v1::Inference::Stub& stub, const v1::GenerateRequest& request, bool json,
                      const GlobalFlags& global) {
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultCallTimeoutS));
  Authorize(&context, global.connection);
  auto reader = stub.GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  v1::GenerateStreamResponse last;
  google::protobuf::RepeatedPtrField<v1::GeneratedTokenLogprobs> logprobs;
  bool printed_ids = false;
  while (reader->Read(&message)) {
    if (json) {
      std::cout << ToJson(message, false) << std::endl;
    } else if (!message.text().empty()) {
      std::cout << message.text() << std::flush;
    } else if (message.token_ids_size() > 0) {
      std::cout << (printed_ids ? " " : "") << absl::StrJoin(message.token_ids(), " ")
                << std::flush;
      printed_ids = true;
    }
    logprobs.MergeFrom(message.logprobs());
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) last = message;
  }
  grpc::Status status = reader->Finish();
  if (!json) std::cout << "\n" << std::flush;
  if (!status.ok()) return Fail("generate --stream", status, global);
  if (json) return kExitOk;
  if (!logprobs.empty()) PrintLogprobs(logprobs);
  PrintFinish(last.finish_reason(), last.stop_string(), last.usage());
  return kExitOk;
}

}  // namespace

int ParseCommandFlags(const std::string& command, base::CliFlags& flags, GlobalFlags* global,
                      const std::vector<std::string>& args) {
  Connection& c = global->connection;
  if (const char* key = std::getenv("ROPEWIRE_API_KEY")) c.api_key = key;
  flags.Add("target", &c.target, "server address HOST:PORT");
  flags.Add("timeout", &global->timeout_s,
            "per-call deadline in seconds (0: the command's default)");
  flags.Add("api-key", &c.api_key,
            "API key, sent as `authorization: Bearer <key>` (default: $ROPEWIRE_API_KEY; the "
            "variable keeps it out of the process list)");
  flags.Add("tls", &c.tls, "connect over TLS, trusting the system's root certificates");
  flags.Add("tls-ca", &c.tls_ca, "PEM CA certificates to trust for the server (implies --tls)");
  flags.Add("tls-cert", &c.tls_cert, "PEM client certificate for mutual TLS (with --tls-key)");
  flags.Add("tls-key", &c.tls_key, "PEM private key of --tls-cert");
  flags.Add("tls-server-name", &c.tls_server_name,
            "name to verify the server's certificate against, when --target is an address");
  std::vector<std::string> words = {"ropewire-cli"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  if (absl::Status s = flags.Parse(static_cast<int>(argv.size()), argv.data()); !s.ok()) {
    std::cerr << "ropewire-cli " << command << ": " << s.message() << "\n" << flags.Help();
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return kExitOk;
  }
  if (!flags.positional().empty()) {
    return UsageError(command, "unexpected argument \"" + flags.positional().front() + "\"");
  }
  if (global->timeout_s < 0) return UsageError(command, "--timeout must be >= 0");
  if (absl::Status s = c.Resolve(); !s.ok()) return UsageError(command, std::string(s.message()));
  return -1;
}

int RunGenerate(const std::vector<std::string>& raw_args) {
  std::vector<std::string> args = raw_args;
  SamplingFlags sampling;
  auto stops = ExtractRepeatedFlag("stop", &args);
  if (!stops.ok()) return UsageError("generate", std::string(stops.status().message()));
  sampling.stop = *stops;
  GlobalFlags global;
  std::string prompt, prompt_token_ids, request_id;
  bool stream = false, json = false;
  base::CliFlags flags(
      "usage: ropewire-cli generate (--prompt TEXT | --prompt-token-ids 1,2,3) [flags]");
  flags.Add("prompt", &prompt, "prompt text (the server must have a tokenizer)");
  flags.Add("prompt-token-ids", &prompt_token_ids, "prompt as comma-separated token ids");
  flags.Add("request-id", &request_id,
            "request id for the server's logs (default: assigned by the server)");
  flags.Add("stream", &stream, "GenerateStream: print text (or token ids) as it is produced");
  flags.Add("json", &json,
            "print the response as JSON (with --stream: one JSON object per message)");
  RegisterSamplingFlags(flags, &sampling);
  if (int code = ParseCommandFlags("generate", flags, &global, args); code >= 0) return code;

  v1::GenerateRequest request;
  if (prompt.empty() == prompt_token_ids.empty()) {
    return UsageError("generate", "give exactly one of --prompt and --prompt-token-ids");
  }
  if (!prompt.empty()) request.set_prompt(prompt);
  if (!prompt_token_ids.empty()) {
    auto ids = ParseTokenIds(prompt_token_ids, "prompt-token-ids");
    if (!ids.ok()) return UsageError("generate", std::string(ids.status().message()));
    for (int32_t id : *ids) request.add_prompt_token_ids(id);
  }
  request.set_request_id(request_id);
  if (absl::Status s = ApplySamplingFlags(sampling, &request); !s.ok()) {
    return UsageError("generate", std::string(s.message()));
  }
  auto stub = v1::Inference::NewStub(MakeChannel(global.connection));
  return stream ? GenerateStreaming(*stub, request, json, global)
                : GenerateUnary(*stub, request, json, global);
}

int RunTokenize(const std::vector<std::string>& args) {
  GlobalFlags global;
  std::string text;
  bool add_special_tokens = true, json = false;
  base::CliFlags flags("usage: ropewire-cli tokenize --text TEXT [flags]");
  flags.Add("text", &text, "text to tokenize");
  flags.Add("add-special-tokens", &add_special_tokens, "add BOS/EOS as the tokenizer specifies");
  flags.Add("json", &json, "print the response as JSON");
  if (int code = ParseCommandFlags("tokenize", flags, &global, args); code >= 0) return code;
  if (text.empty()) return UsageError("tokenize", "--text is required");
  v1::TokenizeRequest request;
  request.set_text(text);
  request.set_add_special_tokens(add_special_tokens);
  v1::TokenizeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultCallTimeoutS));
  Authorize(&context, global.connection);
  grpc::Status status = v1::Inference::NewStub(MakeChannel(global.connection))
                            ->Tokenize(&context, request, &response);
  if (!status.ok()) return Fail("tokenize", status, global);
  std::cout << (json ? ToJson(response, false) : absl::StrJoin(response.token_ids(), " ")) << "\n";
  return kExitOk;
}

int RunInfo(const std::vector<std::string>& args) {
  GlobalFlags global;
  bool json = false;
  base::CliFlags flags("usage: ropewire-cli info [--json]");
  flags.Add("json", &json, "print the ModelInfo message as JSON");
  if (int code = ParseCommandFlags("info", flags, &global, args); code >= 0) return code;
  v1::ModelInfo info;
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultCallTimeoutS));
  Authorize(&context, global.connection);
  grpc::Status status = v1::Inference::NewStub(MakeChannel(global.connection))
                            ->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) return Fail("info", status, global);
  std::cout << (json ? ToJson(info, true) + "\n" : ToPrettyText(info));
  return kExitOk;
}

int RunStats(const std::vector<std::string>& args) {
  GlobalFlags global;
  bool json = false;
  base::CliFlags flags("usage: ropewire-cli stats [--json]");
  flags.Add("json", &json, "print the ServerStats message as JSON");
  if (int code = ParseCommandFlags("stats", flags, &global, args); code >= 0) return code;
  v1::ServerStats stats;
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultCallTimeoutS));
  Authorize(&context, global.connection);
  grpc::Status status = v1::Inference::NewStub(MakeChannel(global.connection))
                            ->GetServerStats(&context, v1::GetServerStatsRequest(), &stats);
  if (!status.ok()) return Fail("stats", status, global);
  std::cout << (json ? ToJson(stats, true) + "\n" : ToPrettyText(stats));
  return kExitOk;
}

int RunHealth(const std::vector<std::string>& args) {
  GlobalFlags global;
  std::string service;
  base::CliFlags flags(
      "usage: ropewire-cli health [--service NAME]  (exit 0 when SERVING, 1 otherwise)");
  flags.Add("service", &service,
            "service to check; empty: the whole server (e.g. ropewire.v1.Inference)");
  if (int code = ParseCommandFlags("health", flags, &global, args); code >= 0) return code;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, global.TimeoutOr(kDefaultHealthTimeoutS));
  Authorize(&context, global.connection);
  grpc::Status status = grpc::health::v1::Health::NewStub(MakeChannel(global.connection))
                            ->Check(&context, request, &response);
  if (!status.ok()) return Fail("health check", status, global);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitRpcError;
}

}  // namespace ropewire::client
