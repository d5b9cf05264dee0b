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
  // log()) if it did not report a port within the timeout.
  bool Start(const std::vector<std::string>& args);
  ~ServerProcess();

  // Waits for grpc.health.v1 to report SERVING for the whole server.
  bool WaitServing(int timeout_ms = 60000);
  std::shared_ptr<grpc::Channel> Channel() const { return channel_; }
  int port() const { return port_; }
  std::string log() const;

  // Sends `signal` and waits for the exit; returns the exit code (-1 on timeout or crash).
  int Stop(int signal, int timeout_ms = 60000);
  bool running() const { return pid_ > 0; }

 private:
  void ReadOutput(int fd);

  pid_t pid_ = -1;
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
