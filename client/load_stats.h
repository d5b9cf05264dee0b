// What the load generator measures per request, and the summary it reports: TTFT, TPOT,
// inter-token latency, end-to-end latency, throughput and the status-code distribution.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "nlohmann/json.hpp"

namespace ropewire::client {

struct RequestRecord {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string error_message;
  double start_s = 0;  // since the run began
  double ttft_s = -1;  // first message that carried a token; -1 when none arrived
  double e2e_s = 0;    // until the call completed (status received)
  int prompt_tokens = 0;
  int output_tokens = 0;
  int messages = 0;      // response messages that carried tokens
  bool streamed = true;  // unary calls have no first-token time of their own, hence no TPOT
  // For each token-carrying message after the first: the gap since the previous one, and how
  // many tokens it carried (the server coalesces tokens when the client reads slowly).
  std::vector<double> gaps_s;
  std::vector<int> gap_tokens;
};

struct Distribution {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// Percentiles by linear interpolation between order statistics (numpy's default), so small
// samples give the same figures other tools report.
Distribution Summarize(std::vector<double> values);

struct LoadReport {
  double duration_s = 0;
  int64_t requests = 0;
  int64_t ok = 0;
  std::map<std::string, int64_t> status_counts;     // code name → count
  std::map<std::string, std::string> first_errors;  // code name → first message seen
  int64_t prompt_tokens = 0;                        // OK requests
  int64_t output_tokens = 0;                        // OK requests
  double request_throughput = 0;                    // OK requests / s
  double output_token_throughput = 0;               // tokens / s
  double tokens_per_message = 0;
  // Over OK requests, in seconds.
  Distribution ttft;
  Distribution tpot;         // per request: (e2e - ttft) / (tokens - 1), requests with > 1 token
  Distribution itl_message;  // every gap between token-carrying messages
  Distribution itl_token;    // each gap divided evenly over the tokens it delivered
  Distribution e2e;
};

LoadReport BuildReport(const std::vector<RequestRecord>& records, double duration_s);

// A human-readable summary, latencies in milliseconds.
std::string FormatReport(const LoadReport& report);

// Machine-readable report (latencies in milliseconds, as *_ms keys), with `config` embedded.
nlohmann::json ReportToJson(const LoadReport& report, const nlohmann::json& config);

}  // namespace ropewire::client
