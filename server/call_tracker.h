// Follows one ropewire.v1.Inference call from arrival to end, and when it ends writes its
// access-log line and records its metrics, exactly once.
#pragma once

#include <atomic>
#include <string>

#include <grpcpp/grpcpp.h>

#include "server/call_record.h"
#include "server/logging.h"
#include "server/metrics.h"

namespace ropewire::server {

// Where finished calls go; either may be null (benchmarks, tests).
struct CallObservers {
  ServerMetrics* metrics = nullptr;
  AccessLog* access_log = nullptr;
};

class CallTracker {
 public:
  CallTracker(const CallObservers& observers, std::string method,
              const grpc::CallbackServerContext& context);

  CallRecord& record() { return record_; }
  const CallRecord& record() const { return record_; }

  // Records the call as ended with `status`; later calls do nothing.
  void Finish(const grpc::Status& status);

 private:
  CallObservers observers_;
  CallRecord record_;
  std::atomic<bool> finished_{false};
};

}  // namespace ropewire::server
