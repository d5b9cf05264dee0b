#include "server/call_tracker.h"

namespace ropewire::server {

CallTracker::CallTracker(const CallObservers& observers, std::string method,
                         const grpc::CallbackServerContext& context)
    : observers_(observers) {
  record_.method = std::move(method);
  record_.peer = context.peer();
  record_.received = ServerClock::now();
}

void CallTracker::Finish(const grpc::Status& status) {
  if (finished_.exchange(true)) return;
  record_.code = status.error_code();
  if (!status.ok()) record_.error = status.error_message();
  record_.e2e_seconds =
      std::chrono::duration<double>(ServerClock::now() - record_.received).count();
  if (observers_.metrics != nullptr) observers_.metrics->RecordCall(record_);
  if (observers_.access_log != nullptr) observers_.access_log->Write(record_);
}

}  // namespace ropewire::server
