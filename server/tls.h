// TLS for the gRPC port: --tls-cert and --tls-key (PEM) serve TLS; --tls-client-ca adds mutual
// TLS (a client must present a certificate signed by that CA). The files are checked at startup
// (readable PEM, the key belongs to the certificate) so a mistake is an error naming the flag,
// and gRPC re-reads them every --tls-reload-seconds: a renewed certificate takes effect for new
// connections without a restart.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"

namespace ropewire::server {

struct TlsOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: clients are not asked for a certificate
  int reload_seconds = 5;

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// Plaintext credentials when TLS is off; INVALID_ARGUMENT (naming the flag and file) when a file
// is missing, not PEM, or the key does not match the certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace ropewire::server
