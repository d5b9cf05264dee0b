// The load generator behind `ropewire-cli load`: closed-loop concurrency or Poisson arrivals,
// random token-id prompts or a fixed text prompt, streaming or unary, spread over several
// connections. It records per request what ghz cannot see inside a stream (first-token time and
// every gap between messages) and leaves the statistics to load_stats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/length_distribution.h"
#include "client/load_stats.h"
#include "client/rpc_util.h"
#include "ropewire/v1/inference.pb.h"

namespace ropewire::client {

struct LoadOptions {
  Connection connection;  // resolved (Connection::Resolve)
  int connections = 1;
  int concurrency = 1;    // closed loop: requests kept in flight (when rate == 0)
  double rate = 0;        // > 0: open loop, Poisson arrivals at this many requests/s
  int64_t requests = 0;   // total requests; 0: run for duration_s
  double duration_s = 0;  // stop issuing after this long; in-flight requests finish
  double timeout_s = 0;   // per-request deadline; 0: none
  bool stream = true;     // GenerateStream; false: unary Generate
  uint64_t seed = 0;      // prompts, lengths and arrival times
  LengthDistribution prompt_len;
  LengthDistribution output_len;
  std::string prompt_text;  // non-empty: every request sends this text instead of random ids
  // Sampling fields copied into every request; prompt and max_tokens are filled per request.
  v1::GenerateRequest base_request;
  // From GetModelInfo: random ids stay in [0, vocab_size) and prompt + output within
  // max_model_len.
  int vocab_size = 0;
  int max_model_len = 0;
};

struct LoadResult {
  std::vector<RequestRecord> records;
  double duration_s = 0;  // first request sent → last one completed
};

// Runs the load; errors only when the target cannot be reached at all.
absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options);

}  // namespace ropewire::client
