// Flags that shape a GenerateRequest, shared by `generate` and `load`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/cli_flags.h"
#include "ropewire/v1/inference.pb.h"

namespace ropewire::client {

// Optional numeric parameters are kept as text: empty means "leave the field unset", so the
// server's documented default applies rather than one the client made up.
struct SamplingFlags {
  int max_tokens = 0;
  std::string temperature;
  std::string top_k;
  std::string top_p;
  std::string min_p;
  std::string repetition_penalty;
  std::string presence_penalty;
  std::string frequency_penalty;
  std::string seed;
  std::vector<std::string> stop;  // filled by ExtractRepeatedFlag("stop", ...)
  std::string stop_token_ids;     // "2,13"
  bool ignore_eos = false;
  int logprobs = 0;
  std::string stop_help_placeholder;  // lets --help list --stop; never read
};

// Registers --max-tokens, --temperature, --top-k, --top-p, --min-p, the penalties, --seed,
// --stop (repeatable), --stop-token-ids, --ignore-eos and --logprobs. The load generator draws
// lengths from distributions and uses --seed for its own random stream, so it passes
// `per_request_length_and_seed` = false to leave --max-tokens and --seed out.
void RegisterSamplingFlags(base::CliFlags& flags, SamplingFlags* sampling,
                           bool per_request_length_and_seed = true);

// Copies the set flags into `request`; a malformed number is INVALID_ARGUMENT naming the flag.
absl::Status ApplySamplingFlags(const SamplingFlags& sampling, v1::GenerateRequest* request);

// "1, 2,3" → {1, 2, 3}.
absl::StatusOr<std::vector<int32_t>> ParseTokenIds(const std::string& text,
                                                   const std::string& flag_name);

// Removes every `--name VALUE` / `--name=VALUE` from `args` and returns the values in order:
// CliFlags keeps one value per flag, and --stop may be given many times.
absl::StatusOr<std::vector<std::string>> ExtractRepeatedFlag(const std::string& name,
                                                             std::vector<std::string>* args);

}  // namespace ropewire::client
