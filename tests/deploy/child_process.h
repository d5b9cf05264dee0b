// A program run by a test (a ropewire replica, a load balancer): its output captured, signals
// sent on request, and never outliving the test — it is SIGKILLed when the object goes away,
// and by the kernel if the test process dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace ropewire::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] (a path) with argv; `env` entries ("NAME=value") are added to the test's
  // environment. Call from the test's main thread: the child is killed when that thread ends.
  absl::Status Start(const std::vector<std::string>& argv,
                     const std::vector<std::string>& env = {});
  void Signal(int signal) const;
  // Waits for the exit; returns the exit code, 128 + the signal for a killed process, or -1 on
  // timeout (the process keeps running).
  int Wait(std::chrono::milliseconds timeout);
  // Signals and waits; SIGKILLs it when `timeout` passes. Returns what Wait returned.
  int Stop(int signal, std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string output() const;
  const std::string& name() const { return name_; }

 private:
  void Read(int fd);

  std::string name_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::string output_;
};

}  // namespace ropewire::testing
