// ropewire replicas and a load balancer on 127.0.0.1, started the way deploy/ describes: each
// balancer runs the configuration file shipped in deploy/, with only its addresses changed
// (listen port, admin port, the three replica addresses) to free ports picked at run time.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "tests/deploy/child_process.h"

namespace ropewire::testing {

// A TCP port on 127.0.0.1 nothing listens on right now.
int FreePort();

// `text` with each `from` replaced by its `to`; an error names a `from` that does not occur,
// so a config whose addresses moved fails the test instead of running unchanged.
absl::StatusOr<std::string> ReplaceEach(
    std::string text, const std::vector<std::pair<std::string, std::string>>& replacements);

struct ReplicaOptions {
  double drain_delay_s = 3;  // as deploy/compose runs them
  double drain_grace_s = 20;
  int max_num_seqs = 16;  // HAProxy's per-server maxconn in deploy/haproxy
};

// One ropewire-server on the demo model with one thread, named by --replica-name, with its HTTP
// side port (/readyz for balancers that check over HTTP) on a free port.
class Replica {
 public:
  absl::Status Start(const std::string& name, const ReplicaOptions& options);
  const std::string& name() const { return name_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return process_; }
  // Requests the replica is running or queueing right now (its own stats, asked directly).
  int InFlight() const;

 private:
  std::string name_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  ChildProcess process_;
};

enum class BalancerKind { kEnvoy, kHaproxy, kHaproxyL4, kNginx };
std::string BalancerName(BalancerKind kind);
// gtest prints test parameters with this (test names then read "... # GetParam() = envoy").
inline void PrintTo(BalancerKind kind, std::ostream* out) { *out << BalancerName(kind); }

class Balancer {
 public:
  // Renders deploy/'s config for `replicas` (exactly three addresses; the same address may
  // repeat), starts the balancer and waits until calls through it reach each distinct replica.
  // `metrics_ports` (one per address) are the replicas' HTTP side ports, for balancers that
  // health-check /readyz there.
  absl::Status Start(BalancerKind kind, const std::vector<std::string>& replica_addresses,
                     const std::vector<std::string>& replica_names,
                     const std::vector<int>& metrics_ports = {});
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return process_; }
  BalancerKind kind() const { return kind_; }
  ~Balancer();

 private:
  absl::StatusOr<std::vector<std::string>> RenderAndCommand(
      const std::vector<std::string>& replica_addresses, const std::vector<int>& metrics_ports);
  absl::Status WaitReachesEveryReplica(const std::vector<std::string>& replica_names);

  BalancerKind kind_ = BalancerKind::kEnvoy;
  int port_ = 0;
  std::string work_dir_;
  ChildProcess process_;
};

// Where scripts/setup.sh put a third-party program, or its path in the system.
std::string ToolPath(const std::string& program);

}  // namespace ropewire::testing
