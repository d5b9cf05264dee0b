// Channels, deadlines and status names shared by ropewire-cli's commands and the load generator.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace ropewire::client {

// How to reach a server: its address, TLS, and the API key every call carries.
struct Connection {
  std::string target = "localhost:50051";
  bool tls = false;             // TLS with the system's trusted roots (implied by --tls-ca etc.)
  std::string tls_ca;           // PEM roots that signed the server's certificate
  std::string tls_cert;         // PEM client certificate for mutual TLS (with tls_key)
  std::string tls_key;          // its private key
  std::string tls_server_name;  // the name to check the server's certificate against
  std::string api_key;          // sent as `authorization: Bearer <key>`; never printed

  // Reads the TLS files and fills `credentials`; INVALID_ARGUMENT naming the flag on a problem.
  absl::Status Resolve();
  bool UsesTls() const;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// A channel to the connection's target (Resolve() first). Channels with different
// `connection_index` never share a TCP connection: gRPC would otherwise pool identical channels
// onto one subchannel, and an L4 balancer in front of several replicas would then see a single
// connection.
std::shared_ptr<grpc::Channel> MakeChannel(const Connection& connection, int connection_index = 0);

// Adds the connection's API key to a call, when it has one.
void Authorize(grpc::ClientContext* context, const Connection& connection);

// "CODE_NAME: message", for error lines.
std::string DescribeStatus(const grpc::Status& status);

// Sets a deadline `seconds` from now; no deadline when seconds <= 0.
void SetDeadline(grpc::ClientContext* context, double seconds);

}  // namespace ropewire::client
