// Starts the gRPC server, loads the model, serves until a stop signal, then drains.
#pragma once

#include <csignal>

#include "absl/status/status.h"
#include "server/server_options.h"

namespace ropewire::server {

// Returns when one of `stop_signals` (blocked in every thread) arrives and the drain is done,
// or with an error when the port or the model cannot be opened.
absl::Status RunServer(const ServerOptions& options, const sigset_t& stop_signals);

}  // namespace ropewire::server
