// ropewire-server: serves a Hugging Face model directory over gRPC.
//
//   ropewire-server --model DIR --port 50051
//
// Startup: the port opens at once with grpc.health.v1 reporting NOT_SERVING; the model loads;
// health turns SERVING. SIGHUP re-reads --api-key-file. SIGTERM/SIGINT drain: health NOT_SERVING
// (still serving for
// --drain-delay-seconds), then GOAWAY so new calls are refused at the transport, in-flight
// requests get --drain-grace-seconds to finish, then the server exits 0.
#include <csignal>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/cli_flags.h"
#include "server/server_options.h"
#include "server/server_runner.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  ropewire::server::ServerOptions options;
  ropewire::base::CliFlags flags("usage: ropewire-server --model DIR [--port 50051] [flags]");
  ropewire::server::RegisterFlags(flags, options);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::cerr << "ropewire-server: " << s.message() << "\n" << flags.Help();
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (absl::Status s = ropewire::server::ValidateOptions(options); !s.ok()) {
    std::cerr << "ropewire-server: " << s.message() << "\n";
    return 2;
  }
  // Block the signals the server handles in every thread; the main thread waits for them with
  // sigwait: SIGTERM and SIGINT drain, SIGHUP re-reads the API keys.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::Status status = ropewire::server::RunServer(options, signals);
  if (!status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  return 0;
}
