#include "tests/deploy/local_deployment.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string SourcePath(const std::string& relative) {
  return std::string(ROPEWIRE_SOURCE_DIR) + "/" + relative;
}

// The config file deploy/ ships for each balancer, and the listen address in it.
struct ShippedConfig {
  std::string path;
  std::string listen_from;
  std::string listen_to_prefix;  // + the port
  std::string listen_to_suffix;
};

ShippedConfig ShippedConfigFor(BalancerKind kind) {
  switch (kind) {
    case BalancerKind::kEnvoy:
      return {"deploy/envoy/envoy.yaml", "address: 0.0.0.0, port_value: 8080",
              "address: 127.0.0.1, port_value: "};
    case BalancerKind::kHaproxy:
      return {"deploy/haproxy/haproxy.cfg", "bind :8080", "bind 127.0.0.1:"};
    case BalancerKind::kHaproxyL4:
      return {"deploy/haproxy/haproxy-l4.cfg", "bind :8080", "bind 127.0.0.1:"};
    case BalancerKind::kNginx:
      return {"deploy/nginx/nginx.conf", "listen 8080 http2;", "listen 127.0.0.1:", " http2;"};
  }
  return {};
}

// The replica address as it appears in each config: "ropewire-N, port_value: 50051" (Envoy's
// flow style), "ropewire-N:50051 port 9090" (HAProxy's, with the port its /readyz check uses)
// or "ropewire-N:50051".
std::string ShippedReplica(BalancerKind kind, int index) {
  const std::string name = absl::StrCat("ropewire-", index + 1);
  switch (kind) {
    case BalancerKind::kEnvoy: return absl::StrCat("address: ", name, ", port_value: 50051");
    case BalancerKind::kHaproxy: return absl::StrCat(name, ":50051 port 9090");
    default: return absl::StrCat(name, ":50051");
  }
}

std::string RenderedReplica(BalancerKind kind, const std::string& address, int metrics_port) {
  const size_t colon = address.rfind(':');
  switch (kind) {
    case BalancerKind::kEnvoy:
      return absl::StrCat("address: ", address.substr(0, colon),
                          ", port_value: ", address.substr(colon + 1));
    case BalancerKind::kHaproxy: return absl::StrCat(address, " port ", metrics_port);
    default: return address;
  }
}

}  // namespace

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

absl::StatusOr<std::string> ReplaceEach(
    std::string text, const std::vector<std::pair<std::string, std::string>>& replacements) {
  for (const auto& [from, to] : replacements) {
    size_t at = text.find(from);
    if (at == std::string::npos)
      return absl::NotFoundError(absl::StrCat("\"", from, "\" not found"));
    for (; at != std::string::npos; at = text.find(from, at + to.size()))
      text.replace(at, from.size(), to);
  }
  return text;
}

std::string ToolPath(const std::string& program) {
  const std::string tool = SourcePath(".tools/bin/" + program);
  if (::access(tool.c_str(), X_OK) == 0) return tool;
  for (const char* dir : {"/usr/sbin/", "/usr/bin/"}) {
    const std::string path = std::string(dir) + program;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return tool;  // the error message names where scripts/setup.sh would have put it
}

absl::Status Replica::Start(const std::string& name, const ReplicaOptions& options) {
  name_ = name;
  // --threads and OMP_NUM_THREADS together: three replicas share two cores with the balancer
  // and the client, and an idle OpenMP worker spinning for a core would stall the others.
  absl::Status started =
      process_.Start({std::string(ROPEWIRE_BINARY_DIR) + "/server/ropewire-server",
                      "--model",
                      SourcePath("models/demo"),
                      "--host",
                      "127.0.0.1",
                      "--port",
                      "0",
                      "--threads",
                      "1",
                      "--replica-name",
                      name,
                      "--max-num-seqs",
                      std::to_string(options.max_num_seqs),
                      "--drain-delay-seconds",
                      std::to_string(options.drain_delay_s),
                      "--drain-grace-seconds",
                      std::to_string(options.drain_grace_s),
                      "--log-level",
                      "info",
                      "--metrics-port",
                      "0"},
                     {"OMP_NUM_THREADS=1"});
  if (!started.ok()) return started;
  const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
  const std::regex metrics("metrics on http://127\\.0\\.0\\.1:([0-9]+)");
  for (auto end = std::chrono::steady_clock::now() + 30s;
       metrics_port_ == 0 && std::chrono::steady_clock::now() < end;) {
    std::smatch match;
    const std::string output = process_.output();
    if (std::regex_search(output, match, listening)) port_ = std::stoi(match[1]);
    if (std::regex_search(output, match, metrics))
      metrics_port_ = std::stoi(match[1]);
    else
      std::this_thread::sleep_for(10ms);
  }
  if (port_ == 0 || metrics_port_ == 0)
    return absl::UnavailableError(
        absl::StrCat(name, " did not open its ports:\n", process_.output()));
  channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (auto end = std::chrono::steady_clock::now() + 60s; std::chrono::steady_clock::now() < end;) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 1s);
    grpc::health::v1::HealthCheckResponse response;
    if (health->Check(&context, {}, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(20ms);
  }
  return absl::UnavailableError(
      absl::StrCat(name, " never reported SERVING:\n", process_.output()));
}

int Replica::InFlight() const {
  auto stub = v1::Inference::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  v1::ServerStats stats;
  if (!stub->GetServerStats(&context, {}, &stats).ok()) return -1;
  return static_cast<int>(stats.running_requests() + stats.waiting_requests());
}

std::string BalancerName(BalancerKind kind) {
  switch (kind) {
    case BalancerKind::kEnvoy: return "envoy";
    case BalancerKind::kHaproxy: return "haproxy";
    case BalancerKind::kHaproxyL4: return "haproxy-l4";
    case BalancerKind::kNginx: return "nginx";
  }
  return "?";
}

absl::StatusOr<std::vector<std::string>> Balancer::RenderAndCommand(
    const std::vector<std::string>& replicas, const std::vector<int>& metrics_ports) {
  const ShippedConfig shipped = ShippedConfigFor(kind_);
  std::vector<std::pair<std::string, std::string>> replacements = {
      {shipped.listen_from,
       shipped.listen_to_prefix + std::to_string(port_) + shipped.listen_to_suffix}};
  for (int i = 0; i < 3; ++i) {
    const int metrics_port = i < static_cast<int>(metrics_ports.size()) ? metrics_ports[i] : 0;
    replacements.emplace_back(ShippedReplica(kind_, i),
                              RenderedReplica(kind_, replicas[i], metrics_port));
  }
  if (kind_ == BalancerKind::kEnvoy) {
    replacements.emplace_back("address: 127.0.0.1, port_value: 9901",
                              absl::StrCat("address: 127.0.0.1, port_value: ", FreePort()));
  }
  auto rendered = ReplaceEach(ReadFile(SourcePath(shipped.path)), replacements);
  if (!rendered.ok())
    return absl::FailedPreconditionError(
        absl::StrCat(shipped.path, ": ", rendered.status().message()));
  const std::string config =
      work_dir_ + "/" + std::filesystem::path(shipped.path).filename().string();
  std::ofstream(config) << *rendered;
  switch (kind_) {
    case BalancerKind::kEnvoy:
      // No hot-restart shared memory, so Envoys of concurrent test runs never meet.
      return std::vector<std::string>{ToolPath("envoy"),       "-c",          config,
                                      "--disable-hot-restart", "--log-level", "warn"};
    case BalancerKind::kHaproxy:
    case BalancerKind::kHaproxyL4:
      return std::vector<std::string>{ToolPath("haproxy"), "-db", "-f", config};
    case BalancerKind::kNginx:
      return std::vector<std::string>{ToolPath("nginx"),
                                      "-e",
                                      "stderr",
                                      "-p",
                                      work_dir_,
                                      "-c",
                                      config,
                                      "-g",
                                      absl::StrCat("daemon off; pid ", work_dir_, "/nginx.pid;")};
  }
  return absl::InternalError("unknown balancer");
}

absl::Status Balancer::Start(BalancerKind kind, const std::vector<std::string>& replica_addresses,
                             const std::vector<std::string>& replica_names,
                             const std::vector<int>& metrics_ports) {
  if (replica_addresses.size() != 3)
    return absl::InvalidArgumentError("deploy/ configs name three replicas");
  if (kind == BalancerKind::kHaproxy && metrics_ports.size() != 3)
    return absl::InvalidArgumentError("HAProxy checks each replica's /readyz: give its port");
  kind_ = kind;
  port_ = FreePort();
  char dir_template[] = "/tmp/ropewire-deploy-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp failed");
  work_dir_ = dir_template;
  auto command = RenderAndCommand(replica_addresses, metrics_ports);
  if (!command.ok()) return command.status();
  if (auto started = process_.Start(*command); !started.ok()) return started;
  return WaitReachesEveryReplica(replica_names);
}

// Short calls through the balancer, each on a fresh connection (so an L4 balancer spreads them
// too), until every replica has answered one: health checks have passed everywhere.
absl::Status Balancer::WaitReachesEveryReplica(const std::vector<std::string>& replica_names) {
  std::set<std::string> missing(replica_names.begin(), replica_names.end());
  v1::GenerateRequest probe;
  probe.add_prompt_token_ids(1);
  probe.set_max_tokens(1);
  std::string last_error;
  for (auto end = std::chrono::steady_clock::now() + 30s;
       !missing.empty() && std::chrono::steady_clock::now() < end;) {
    if (!process_.running() || process_.Wait(0ms) != -1) break;
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    auto stub = v1::Inference::NewStub(
        grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::GenerateResponse response;
    const grpc::Status status = stub->Generate(&context, probe, &response);
    if (status.ok()) {
      auto it = context.GetServerInitialMetadata().find("ropewire-replica");
      if (it != context.GetServerInitialMetadata().end())
        missing.erase(std::string(it->second.data(), it->second.size()));
    } else {
      last_error = status.error_message();
    }
    std::this_thread::sleep_for(50ms);
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(BalancerName(kind_), " did not reach ",
                                             *missing.begin(), " (last error: ", last_error,
                                             "); its output:\n", process_.output()));
}

Balancer::~Balancer() {
  process_.Stop(SIGTERM, 10s);
  if (!work_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(work_dir_, ignored);
  }
}

}  // namespace ropewire::testing
