#include "server/health_service.h"

#include "absl/strings/str_cat.h"

namespace ropewire::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream: sends the current status, then every change. One write in flight; a change
// that arrives meanwhile replaces the one waiting, so a slow watcher only ever gets the latest.
class HealthService::Watcher : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}
  const std::string& name() const { return name_; }

  void Update(ServingStatus status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || end_requested_) return;
      if (write_in_flight_) {
        pending_ = status;
        has_pending_ = true;
        return;
      }
      if (sent_any_ && status == last_sent_) return;
      BeginWriteLocked(status);
    }
    StartWrite(&message_);
  }
  // Ends the stream once the last status is written.
  void EndStream() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      end_requested_ = true;
      if (write_in_flight_ || finished_) return;
      finished_ = true;
    }
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }

  void OnWriteDone(bool ok) override {
    enum { kNothing, kWrite, kEnd, kBroken } next = kNothing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_in_flight_ = false;
      if (finished_) return;
      if (!ok) {
        next = kBroken;
      } else if (has_pending_ && pending_ != last_sent_) {
        BeginWriteLocked(pending_);
        next = kWrite;
      } else if (end_requested_) {
        next = kEnd;
      }
      has_pending_ = false;
      if (next == kBroken || next == kEnd) finished_ = true;
    }
    if (next == kWrite) StartWrite(&message_);
    if (next == kEnd)
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    if (next == kBroken) Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was broken"));
  }
  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  void OnDone() override {
    service_->Unregister(this);
    delete this;
  }

 private:
  void BeginWriteLocked(ServingStatus status) {
    message_.set_status(status);
    last_sent_ = status;
    sent_any_ = true;
    write_in_flight_ = true;
  }

  HealthService* const service_;
  const std::string name_;
  std::mutex mu_;
  HealthCheckResponse message_;
  bool write_in_flight_ = false;
  bool sent_any_ = false;
  ServingStatus last_sent_ = HealthCheckResponse::UNKNOWN;
  bool has_pending_ = false;
  ServingStatus pending_ = HealthCheckResponse::UNKNOWN;
  bool end_requested_ = false;
  bool finished_ = false;
};

HealthService::HealthService(const std::vector<std::string>& services) {
  statuses_[""] = HealthCheckResponse::NOT_SERVING;
  for (const std::string& name : services) statuses_[name] = HealthCheckResponse::NOT_SERVING;
}

// Every Watch stream has ended by now: gRPC's Server::Shutdown returns only after all calls are
// done, and the server is destroyed before this service.
HealthService::~HealthService() = default;

HealthService::ServingStatus HealthService::StatusLocked(const std::string& service) const {
  auto it = statuses_.find(service);
  return it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second;
}

void HealthService::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  const ServingStatus status =
      serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  for (auto& [name, value] : statuses_) value = status;
  for (Watcher* watcher : watchers_) watcher->Update(StatusLocked(watcher->name()));
}

void HealthService::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  for (auto& [name, value] : statuses_) value = HealthCheckResponse::NOT_SERVING;
  for (Watcher* watcher : watchers_) {
    watcher->Update(HealthCheckResponse::NOT_SERVING);
    watcher->EndStream();
  }
}

void HealthService::Unregister(Watcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  ServingStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = StatusLocked(request->service());
  }
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown service \"", request->service(), "\"")));
    return reactor;
  }
  response->set_status(status);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*, const HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, request->service());
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.insert(watcher);
  if (shut_down_) {
    watcher->Update(HealthCheckResponse::NOT_SERVING);
    watcher->EndStream();
  } else {
    watcher->Update(StatusLocked(request->service()));
  }
  return watcher;
}

}  // namespace ropewire::server
