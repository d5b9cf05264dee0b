// Runs the real ropewire-server binary as a child process for end-to-end tests: picks a free
// port (--port 0, read back from the log), waits until health says SERVING, and stops it with a
// signal.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::testing {

class ServerProcess {
 public:
  // Starts `ropewire-server --host 127.0.0.1 --port 0 <args>`; returns false (with the log in
  // log()) if it did not report a port within the timeout, or exited first (Stop() then
  // returns its exit code).
  bool Start(const std::vector<std::string>& args);
  ~ServerProcess();

  // Waits for grpc.health.v1 to report SERVING for the whole server.
  bool WaitServing(int timeout_ms = 60000);
  std::shared_ptr<grpc::Channel> Channel() const { return channel_; }
  // Replaces the plaintext channel Start() made (e.g. with a TLS one) for WaitServing and tests.
  void UseChannel(std::shared_ptr<grpc::Channel> channel) { channel_ = std::move(channel); }
  int port() const { return port_; }
  // The HTTP side port the server logged (--metrics-port), or 0.
  int MetricsPort() const;
  std::string log() const;
  // Waits until the log contains `text` (true) or the timeout passes (false).
  bool WaitForLog(const std::string& text, int timeout_ms = 10000) const;

  // Sends `signal` without waiting for anything (e.g. SIGHUP).
  void Signal(int signal);

  // Sends `signal` and waits for the exit; returns the exit code (-1 on timeout or crash).
  int Stop(int signal, int timeout_ms = 60000);
  bool running() const { return pid_ > 0; }

 private:
  void ReadOutput(int fd);

  // The exit code of a process that ended by itself, or -1.
  int Reap(int status);

  pid_t pid_ = -1;
  int exit_code_ = -1;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::string log_;
};

// Polls GetServerStats until nothing runs or waits and every KV block is free (the engine's own
// published state, not a sleep); `last` holds the last stats read.
bool WaitIdle(v1::Inference::Stub& stub, v1::ServerStats* last);

}  // namespace ropewire::testing
