// Starts the gRPC server, loads the model, serves until a stop signal, then drains.
#pragma once

#include <csignal>

#include "absl/status/status.h"
#include "server/server_options.h"

namespace ropewire::server {

// `signals` (blocked in every thread) are SIGTERM and SIGINT, which drain and return, and SIGHUP,
// which re-reads the API key file. Returns an error when a port, a TLS or key file, or the model
// cannot be opened.
absl::Status RunServer(const ServerOptions& options, const sigset_t& signals);

}  // namespace ropewire::server
