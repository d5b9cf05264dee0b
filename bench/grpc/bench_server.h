// The server side of the gRPC overhead benchmark. The benchmark binary re-executes itself with
// `--serve echo|ropewire` so each server runs in a clean process of its own (no fork after gRPC
// started) whose getrusage(RUSAGE_SELF) is the server's CPU time and nothing else.
//
// Protocol on stdin/stdout: the server prints "port N" once listening; each "sample" line is
// answered with one line "cpu_us <n> engine_us <n> sample_us <n> execute_us <n> steps <n>";
// "quit" or end of input stops it.
#pragma once

#include <string>

namespace ropewire::bench {

// The directory with the benchmark's TLS files (server.pem, server.key, ca.pem), set by the
// parent for its children.
inline constexpr char kBenchPkiVariable[] = "ROPEWIRE_BENCH_PKI";

// kind "echo": a bare callback-API server-streaming echo that writes max_tokens pre-built
// one-token GenerateStreamResponse messages. kind "ropewire": the real InferenceService and
// Engine over a NullModel with `vocab_size` entries, plaintext and without metrics, as
// `ropewire-server` without --metrics-port; "ropewire-metrics" adds the Prometheus metrics the
// server records for every call, token and step; "ropewire-tls" serves over TLS.
int ServeMain(const std::string& kind, int vocab_size);

}  // namespace ropewire::bench
