// The parent's handle on a benchmark server process (see bench_server.h): starts it pinned to
// a CPU, reads its port, and samples its CPU time and engine counters around each run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"

namespace ropewire::bench {

struct ServerSample {
  int64_t cpu_us = 0;      // getrusage(RUSAGE_SELF) user + system of the server process
  int64_t engine_us = 0;   // engine thread: plan + commit + delivery to the streams
  int64_t sample_us = 0;   // engine thread: sampling over the vocabulary
  int64_t execute_us = 0;  // engine thread: the null model
  int64_t steps = 0;
};

ServerSample operator-(const ServerSample& a, const ServerSample& b);

class ServerChild {
 public:
  // Runs `self_exe --serve KIND --vocab N`; `cpu` >= 0 pins it to that CPU.
  static absl::StatusOr<std::unique_ptr<ServerChild>> Start(const std::string& self_exe,
                                                            const std::string& kind, int vocab_size,
                                                            int cpu);
  ~ServerChild();

  int port() const { return port_; }
  absl::StatusOr<ServerSample> Sample();

 private:
  ServerChild() = default;
  pid_t pid_ = -1;
  FILE* to_child_ = nullptr;
  FILE* from_child_ = nullptr;
  int port_ = 0;
};

}  // namespace ropewire::bench
