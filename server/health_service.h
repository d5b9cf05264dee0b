// grpc.health.v1.Health (Check and Watch) over the callback API, built from the generated code
// of Debian's health.proto. ropewire serves its own implementation rather than gRPC's default
// one so that server reflection can describe every service it lists (the default service is
// not backed by a linked descriptor), and so that a drain can end Watch streams at once instead
// of letting them hold the server's shutdown until its deadline.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace ropewire::server {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // Registers "" (the whole server) and each name in `services`, all NOT_SERVING.
  explicit HealthService(const std::vector<std::string>& services);
  ~HealthService() override;

  // Sets every registered name to SERVING or NOT_SERVING and tells every watcher. Ignored after
  // Shutdown().
  void SetServing(bool serving);
  // NOT_SERVING for good; every Watch stream gets that status and then ends with UNAVAILABLE,
  // so gRPC's Server::Shutdown does not wait on health watchers.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  // SERVICE_UNKNOWN for a name that was never registered (Watch's answer; Check's is NOT_FOUND).
  ServingStatus StatusLocked(const std::string& service) const;
  void Unregister(Watcher* watcher);

  std::mutex mu_;
  std::map<std::string, ServingStatus> statuses_;
  std::set<Watcher*> watchers_;
  bool shut_down_ = false;
};

}  // namespace ropewire::server
