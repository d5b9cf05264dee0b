#include "server/server_options.h"

#include "absl/strings/str_cat.h"

namespace ropewire::server {

void RegisterFlags(base::CliFlags& f, ServerOptions& o) {
  f.Add("model", &o.model,
        "Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a GGUF file");
  f.Add("host", &o.host, "address to listen on");
  f.Add("port", &o.port, "port to listen on");
  f.Add("device", &o.device, "cpu or cuda (builds with the CUDA backend, on a machine with a GPU)");
  f.Add("dtype", &o.dtype,
        "cuda: storage type of weights, activations and KV cache (bf16 or fp16)");
  f.Add("gpu-memory-utilization", &o.gpu_memory_utilization,
        "cuda: fraction of the GPU's memory for weights, activations and the KV cache");
  f.Add("weight-dtype", &o.weight_dtype,
        "cpu: storage of the weight matrices: auto (as stored in the checkpoint), f32, bf16, f16");
  f.Add("quantization", &o.quantization,
        "cpu: quantize the weight matrices at load: none, int8 (Q8_0), int4 (Q4_0), q4_1");
  f.Add("kv-cache-dtype", &o.kv_cache_dtype,
        "cpu: KV cache storage: auto (f32 for f32 weights, else bf16), f32, bf16, f16");
  f.Add("threads", &o.threads, "CPU threads for the model (0: one per core)");
  f.Add("max-num-seqs", &o.max_num_seqs, "sequences per model step");
  f.Add("max-num-batched-tokens", &o.max_num_batched_tokens,
        "tokens per model step (prompt chunks + decodes)");
  f.Add("max-model-len", &o.max_model_len,
        "prompt + generated tokens per request (0: the model's limit)");
  f.Add("kv-cache-bytes", &o.kv_cache_bytes, "memory for the KV cache");
  f.Add("num-kv-blocks", &o.num_kv_blocks, "KV cache size in blocks (overrides --kv-cache-bytes)");
  f.Add("block-size", &o.block_size, "KV cache block size in tokens");
  f.Add("max-queue", &o.max_queue, "waiting requests before new ones get RESOURCE_EXHAUSTED");
  f.Add("prefix-caching", &o.prefix_caching, "reuse KV blocks of shared prompt prefixes");
  f.Add("static-batching", &o.static_batching,
        "baseline for comparison: fixed batches, KV reserved for the maximum length");
  f.Add("default-max-tokens", &o.default_max_tokens, "max_tokens of requests that leave it 0");
  f.Add("drain-delay-seconds", &o.drain_delay_seconds,
        "on SIGTERM, keep serving this long with health already NOT_SERVING, so balancers and "
        "Kubernetes endpoints stop choosing this replica before it closes its connections");
  f.Add("drain-grace-seconds", &o.drain_grace_seconds,
        "after the drain delay: GOAWAY (no new calls), and in-flight requests get this long to "
        "finish before they are cancelled");
  f.Add("replica-name", &o.replica_name,
        "name sent in the `ropewire-replica` response metadata of generation calls, to tell "
        "behind a load balancer which replica answered (default: the host name)");
  f.Add("max-message-bytes", &o.max_message_bytes, "largest request message accepted");
  f.Add("log-level", &o.log_level, "trace, debug, info, warn, error");
  f.Add("log-format", &o.log_format,
        "text, or json (one JSON object per line, the access log's lines included)");
  f.Add("metrics-port", &o.metrics_port,
        "HTTP port for /metrics (Prometheus), /healthz and /readyz on --host (-1: off, 0: any "
        "free port)");
  f.Add("tls-cert", &o.tls_cert, "PEM certificate chain: serve gRPC over TLS (with --tls-key)");
  f.Add("tls-key", &o.tls_key, "PEM private key of --tls-cert");
  f.Add("tls-client-ca", &o.tls_client_ca,
        "PEM CA certificates: mutual TLS, clients must present a certificate signed by one");
  f.Add("tls-reload-seconds", &o.tls_reload_seconds,
        "re-read the TLS files this often, so renewed certificates apply without a restart");
  f.Add("api-key-file", &o.api_key_file,
        "file of API keys, one per line (KEY or NAME:KEY); every ropewire.v1.Inference call must "
        "send `authorization: Bearer <key>`; re-read on SIGHUP");
  f.Add("no-tokenizer", &o.no_tokenizer, "ignore tokenizer.json: token-id prompts only");
  f.Add("context-shift-sink-tokens", &o.context_shift_sink_tokens,
        "when a request reaches --max-model-len, keep this many first tokens plus the recent half "
        "of the rest and keep generating (RoPE/ALiBi models; -1 disables)");
}

absl::Status ValidateOptions(const ServerOptions& o) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (o.model.empty()) return bad("--model is required");
  if (o.port < 0 || o.port > 65535)
    return bad(absl::StrCat("--port must be in [0, 65535], got ", o.port));
  if (o.device != "cpu" && o.device != "cuda") {
    return bad(absl::StrCat("--device must be cpu or cuda, got ", o.device));
  }
  if (o.dtype != "bf16" && o.dtype != "fp16") {
    return bad(absl::StrCat("--dtype must be bf16 or fp16, got ", o.dtype));
  }
  if (!(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1)) {
    return bad(
        absl::StrCat("--gpu-memory-utilization must be in (0, 1], got ", o.gpu_memory_utilization));
  }
  if (o.max_num_seqs <= 0) return bad("--max-num-seqs must be positive");
  if (o.max_num_batched_tokens <= 0) return bad("--max-num-batched-tokens must be positive");
  if (o.block_size <= 0 || o.block_size > 1024) return bad("--block-size must be in [1, 1024]");
  if (o.max_queue <= 0) return bad("--max-queue must be positive");
  if (o.kv_cache_bytes <= 0 && o.num_kv_blocks <= 0)
    return bad("--kv-cache-bytes must be positive");
  if (o.default_max_tokens <= 0) return bad("--default-max-tokens must be positive");
  if (!(o.drain_delay_seconds >= 0 && o.drain_delay_seconds <= 3600)) {
    return bad(
        absl::StrCat("--drain-delay-seconds must be in [0, 3600], got ", o.drain_delay_seconds));
  }
  if (!(o.drain_grace_seconds >= 0 && o.drain_grace_seconds <= 86400)) {
    return bad(
        absl::StrCat("--drain-grace-seconds must be in [0, 86400], got ", o.drain_grace_seconds));
  }
  for (char c : o.replica_name) {
    // gRPC metadata values must be printable ASCII.
    if (c < 0x20 || c > 0x7e) return bad("--replica-name must be printable ASCII");
  }
  if (o.max_message_bytes <= 0) return bad("--max-message-bytes must be positive");
  if (o.log_format != "text" && o.log_format != "json") {
    return bad(absl::StrCat("--log-format must be text or json, got ", o.log_format));
  }
  if (o.metrics_port < -1 || o.metrics_port > 65535) {
    return bad(
        absl::StrCat("--metrics-port must be -1 (off) or in [0, 65535], got ", o.metrics_port));
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) return bad("--tls-cert and --tls-key go together");
  if (!o.tls_client_ca.empty() && o.tls_cert.empty())
    return bad("--tls-client-ca needs --tls-cert and --tls-key");
  if (o.tls_reload_seconds < 1) return bad("--tls-reload-seconds must be >= 1");
  return absl::OkStatus();
}

}  // namespace ropewire::server
