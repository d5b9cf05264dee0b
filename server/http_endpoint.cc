#include "server/http_endpoint.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

void Respond(mg_connection* connection, int status, absl::string_view reason,
             absl::string_view content_type, absl::string_view body) {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", reason, "\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(),
                   "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
  mg_write(connection, head.data(), head.size());
  mg_write(connection, body.data(), body.size());
}

// "[::1]" and "::" take brackets in civetweb's listening_ports; names and IPv4 do not.
std::string ListenSpec(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

// civetweb's own error messages (why a port could not be opened, ...) into the server's log.
int LogCivetwebMessage(const mg_connection*, const char* message) {
  spdlog::warn("metrics port: {}", message);
  return 1;
}

// A port nothing listens on right now (civetweb cannot listen on port 0 and report the port).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

class HttpEndpoint::MetricsHandler : public CivetHandler {
 public:
  explicit MetricsHandler(const ServerMetrics* metrics) : metrics_(metrics) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    Respond(connection, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics_->Scrape());
    return true;
  }

 private:
  const ServerMetrics* metrics_;
};

class HttpEndpoint::HealthHandler : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* connection) override {
    Respond(connection, 200, "OK", "text/plain", "ok\n");
    return true;
  }
};

class HttpEndpoint::ReadyHandler : public CivetHandler {
 public:
  explicit ReadyHandler(std::function<Readiness()> readiness) : readiness_(std::move(readiness)) {}
  bool handleGet(CivetServer*, mg_connection* connection) override {
    const Readiness now = readiness_();
    if (now.ready) {
      Respond(connection, 200, "OK", "text/plain", now.state + "\n");
    } else {
      Respond(connection, 503, "Service Unavailable", "text/plain", now.state + "\n");
    }
    return true;
  }

 private:
  std::function<Readiness()> readiness_;
};

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& host, int port, const ServerMetrics* metrics,
    std::function<Readiness()> readiness) {
  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint());
  // Port 0 (tests): a free port, tried again should another process take it first.
  for (int attempt = 0; !endpoint->server_; ++attempt) {
    const int chosen = port != 0 ? port : FreePort();
    const std::vector<std::string> options = {
        "listening_ports", ListenSpec(host, chosen),
        // Scrapes and probes are few; two threads keep one slow client from blocking the other.
        "num_threads", "2", "request_timeout_ms", "10000"};
    try {
      CivetCallbacks callbacks;
      callbacks.log_message = &LogCivetwebMessage;
      endpoint->server_ = std::make_unique<CivetServer>(options, &callbacks);
      endpoint->port_ = chosen;
    } catch (const CivetException& e) {
      if (port == 0 && attempt < 5) continue;
      return absl::UnavailableError(absl::StrCat("cannot serve HTTP on ", ListenSpec(host, chosen),
                                                 " (--metrics-port): ", e.what()));
    }
  }
  endpoint->metrics_handler_ = std::make_unique<MetricsHandler>(metrics);
  endpoint->health_handler_ = std::make_unique<HealthHandler>();
  endpoint->ready_handler_ = std::make_unique<ReadyHandler>(std::move(readiness));
  // A trailing $ makes civetweb match the path exactly rather than as a prefix.
  endpoint->server_->addHandler("/metrics$", endpoint->metrics_handler_.get());
  endpoint->server_->addHandler("/healthz$", endpoint->health_handler_.get());
  endpoint->server_->addHandler("/readyz$", endpoint->ready_handler_.get());
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  // Stop serving before the handlers go away.
  if (server_) server_->close();
}

}  // namespace ropewire::server
