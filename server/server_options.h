// ropewire-server's command-line options.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "base/cli_flags.h"

namespace ropewire::server {

struct ServerOptions {
  std::string model;
  std::string host = "0.0.0.0";
  int port = 50051;
  std::string device = "cpu";
  std::string dtype = "bf16";           // cuda only
  double gpu_memory_utilization = 0.9;  // cuda only
  std::string weight_dtype = "auto";    // cpu: auto | f32 | bf16 | f16
  std::string quantization = "none";    // cpu: none | int8 | int4 | q8_0 | q4_0 | q4_1
  std::string kv_cache_dtype = "auto";  // cpu: auto | f32 | bf16 | f16
  int threads = 0;
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;  // 0: the model's own limit
  int64_t kv_cache_bytes = int64_t(2) << 30;
  int num_kv_blocks = 0;  // overrides kv_cache_bytes when > 0
  int block_size = 16;
  int max_queue = 1024;
  bool prefix_caching = true;
  bool static_batching = false;  // comparison baseline only
  int default_max_tokens = 16;
  double drain_delay_seconds = 0;   // on SIGTERM: health NOT_SERVING, still serving, for this long
  double drain_grace_seconds = 30;  // then GOAWAY; in-flight requests get this long to finish
  std::string replica_name;         // sent as `ropewire-replica` metadata; empty: the host name
  int max_message_bytes = 16 << 20;
  std::string log_level = "info";
  bool no_tokenizer = false;           // serve token ids only even if tokenizer.json exists
  int context_shift_sink_tokens = -1;  // >= 0 enables context shift (relative encodings only)
};

void RegisterFlags(base::CliFlags& flags, ServerOptions& options);
absl::Status ValidateOptions(const ServerOptions& options);

}  // namespace ropewire::server
