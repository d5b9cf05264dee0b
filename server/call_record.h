// What the server knows about one finished ropewire.v1.Inference call: it becomes one
// access-log line and the per-request metric observations.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <grpcpp/support/status.h>

namespace ropewire::server {

using ServerClock = std::chrono::steady_clock;

struct CallRecord {
  std::string method;      // "Generate", "GenerateStream", "Tokenize", ...
  std::string request_id;  // generation calls; caller-supplied unless the server assigned it
  std::string peer;        // as gRPC names it, e.g. "ipv4:127.0.0.1:51234"
  std::string key_name;    // the API key's name; empty without --api-key-file or when refused
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string error;          // the status message when code is not OK
  std::string finish_reason;  // generation calls that ran: stop, stop_string, length, cancelled
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;
  int completion_tokens = 0;
  ServerClock::time_point received;
  std::optional<double> queue_seconds;  // from the engine's intake to the first step with it
  std::optional<double> ttft_seconds;   // from `received` to the first generated token
  double e2e_seconds = 0;               // from `received` to the end of the call
};

}  // namespace ropewire::server
