// ropewire-cli's subcommands. Each takes the words after its name and returns the process exit
// code: 0 success, 1 the server answered with an error (or is not SERVING), 2 bad usage.
#pragma once

#include <string>
#include <vector>

#include "base/cli_flags.h"
#include "client/rpc_util.h"

namespace ropewire::client {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

// Flags every subcommand accepts: where the server is, how to reach it, and call deadlines.
struct GlobalFlags {
  Connection connection;
  double timeout_s = 0;  // 0: the command's own default
  double TimeoutOr(double fallback) const { return timeout_s > 0 ? timeout_s : fallback; }
  const std::string& target() const { return connection.target; }
};

// Adds the global flags to `flags` and parses `args`; the API key defaults to $ROPEWIRE_API_KEY.
// Returns -1 to go on, or the exit code to stop with (after printing help, or an error naming
// the flag).
int ParseCommandFlags(const std::string& command, base::CliFlags& flags, GlobalFlags* global,
                      const std::vector<std::string>& args);

int RunGenerate(const std::vector<std::string>& args);
int RunTokenize(const std::vector<std::string>& args);
int RunInfo(const std::vector<std::string>& args);
int RunStats(const std::vector<std::string>& args);
int RunHealth(const std::vector<std::string>& args);
int RunLoadCommand(const std::vector<std::string>& args);

}  // namespace ropewire::client
