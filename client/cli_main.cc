// ropewire-cli: talks to a ropewire server over gRPC.
//
//   ropewire-cli generate --prompt "Once upon a time" --max-tokens 32 --stream
//   ropewire-cli health --target 127.0.0.1:50051        (exit 0 when SERVING: a HEALTHCHECK)
//   ropewire-cli load --concurrency 8 --requests 200 --json results.json
#include <iostream>
#include <string>
#include <vector>

#include "client/commands.h"

namespace {

constexpr char kUsage[] =
    R"(usage: ropewire-cli COMMAND [--target HOST:PORT] [--timeout SECONDS] [flags]

commands:
  generate   one completion (--prompt TEXT or --prompt-token-ids 1,2,3; --stream for tokens as produced)
  tokenize   token ids of --text
  info       what the server is serving (GetModelInfo)
  stats      live engine state (GetServerStats)
  health     grpc.health.v1 check; exit 0 when SERVING, 1 otherwise
  load       load generator: TTFT, TPOT, inter-token and end-to-end latency, throughput

`ropewire-cli COMMAND --help` lists a command's flags. Exit codes: 0 success, 1 the server
answered with an error or is unreachable, 2 bad usage.
)";

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>& args);
};

constexpr Command kCommands[] = {
    {"generate", ropewire::client::RunGenerate}, {"tokenize", ropewire::client::RunTokenize},
    {"info", ropewire::client::RunInfo},         {"stats", ropewire::client::RunStats},
    {"health", ropewire::client::RunHealth},     {"load", ropewire::client::RunLoadCommand},
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // The command is the first word that is not a flag or a flag's value; global flags may come
  // before it, so look for a known name rather than taking args[0].
  for (size_t i = 0; i < args.size(); ++i) {
    for (const Command& command : kCommands) {
      if (args[i] != command.name) continue;
      std::vector<std::string> rest = args;
      rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i));
      return command.run(rest);
    }
  }
  const bool help = args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help";
  if (!help) std::cerr << "ropewire-cli: no command given or unknown command\n";
  (help ? std::cout : std::cerr) << kUsage;
  return help ? ropewire::client::kExitOk : ropewire::client::kExitUsage;
}
