// Names of gRPC status codes as the gRPC specification spells them ("RESOURCE_EXHAUSTED"), for
// the server's access log and metrics labels and the client's messages.
#pragma once

#include <grpcpp/support/status.h>

namespace ropewire {

// The code's name; "UNKNOWN" for a value outside the specification.
const char* GrpcStatusCodeName(grpc::StatusCode code);

}  // namespace ropewire
