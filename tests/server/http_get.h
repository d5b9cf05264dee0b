// A minimal HTTP/1.1 GET over a fresh loopback connection, for tests of the HTTP side port.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ropewire::testing {

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path);

}  // namespace ropewire::testing
