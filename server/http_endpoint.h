// The HTTP side port (--metrics-port): /metrics (Prometheus text format), /healthz (200 while
// the process answers) and /readyz (200 only while the server is SERVING; 503 while the model
// loads and from the first moment of a drain), for Prometheus, Kubernetes probes and balancers
// that health-check over HTTP. Served by civetweb on threads of its own, so a busy gRPC server
// still answers probes.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/metrics.h"

class CivetServer;

namespace ropewire::server {

class HttpEndpoint {
 public:
  // `readiness` says whether the server is ready and, either way, the state to report.
  struct Readiness {
    bool ready = false;
    std::string state;
  };

  // Listens on host:port (port 0: a free one); errors name the address.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& host, int port,
                                                             const ServerMetrics* metrics,
                                                             std::function<Readiness()> readiness);
  ~HttpEndpoint();

  int port() const { return port_; }

 private:
  class MetricsHandler;
  class HealthHandler;
  class ReadyHandler;
  HttpEndpoint() = default;

  std::unique_ptr<CivetServer> server_;
  std::unique_ptr<MetricsHandler> metrics_handler_;
  std::unique_ptr<HealthHandler> health_handler_;
  std::unique_ptr<ReadyHandler> ready_handler_;
  int port_ = 0;
};

}  // namespace ropewire::server
