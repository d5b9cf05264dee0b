// Turns a GenerateRequest message into the engine's GenerationRequest: fills defaults, checks
// every parameter (INVALID_ARGUMENT naming the field) and tokenizes text prompts.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ropewire/v1/inference.pb.h"
#include "scheduler/sequence.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {

struct BuiltRequest {
  scheduler::GenerationRequest request;
  std::vector<std::string> stop_strings;
  bool skip_special_tokens = true;
};

struct RequestLimits {
  int default_max_tokens = 16;
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  // Request ids appear in logs and responses; longer ones are INVALID_ARGUMENT.
  int max_request_id_bytes = 256;
  // A text prompt longer than this is INVALID_ARGUMENT before it is tokenized (0: no limit).
  // The server sets it to the model's maximum length times its longest token, in bytes: a longer
  // text could never fit, and tokenizing megabytes only to refuse them would waste the time.
  int64_t max_prompt_bytes = 0;
};

// `tokenizer` may be null (model served without one): text prompts and stop strings are then
// FAILED_PRECONDITION.
absl::StatusOr<BuiltRequest> BuildRequest(const v1::GenerateRequest& message,
                                          const tokenizer::ModelTokenizer* tokenizer,
                                          const RequestLimits& limits);

}  // namespace ropewire::server
