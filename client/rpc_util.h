// Channels, deadlines and status names shared by ropewire-cli's commands and the load generator.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

namespace ropewire::client {

// A plaintext channel to `target` (HOST:PORT). Channels with different `connection_index` never
// share a TCP connection: gRPC would otherwise pool identical channels onto one subchannel, and
// an L4 balancer in front of several replicas would then see a single connection.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, int connection_index = 0);

// The canonical upper-case name of a gRPC status code, e.g. "UNAVAILABLE".
std::string StatusCodeName(grpc::StatusCode code);

// "CODE_NAME: message", for error lines.
std::string DescribeStatus(const grpc::Status& status);

// Sets a deadline `seconds` from now; no deadline when seconds <= 0.
void SetDeadline(grpc::ClientContext* context, double seconds);

}  // namespace ropewire::client
