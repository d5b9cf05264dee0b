// absl::Status ↔ grpc::Status, in one place (DESIGN.md decision 7).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ropewire::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ropewire::server
