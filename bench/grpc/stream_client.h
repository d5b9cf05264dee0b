// The client side of the gRPC overhead benchmark: `streams` threads, each on its own
// connection, each running GenerateStream calls back to back and counting what arrives.
#pragma once

#include <cstdint>
#include <string>

namespace ropewire::bench {

struct ClientResult {
  int64_t tokens = 0;
  int64_t messages = 0;
  int64_t failed_calls = 0;
  std::string first_error;
  double wall_s = 0;
};

// `tls_ca`: a PEM CA file to connect over TLS (verifying the name "localhost"); empty for
// plaintext.
ClientResult RunStreams(int port, int streams, int calls_per_stream, int tokens_per_call,
                        const std::string& tls_ca = "");

}  // namespace ropewire::bench
