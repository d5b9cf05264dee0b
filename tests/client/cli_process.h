// Runs the ropewire-cli binary as a subprocess and captures its exit code and output.
#pragma once

#include <string>
#include <vector>

namespace ropewire::testing {

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal or could not start
  std::string out;
  std::string err;
};

CliResult RunCli(const std::vector<std::string>& args);

// A loopback port with nothing listening on it (bound, then released).
int UnusedPort();

}  // namespace ropewire::testing
