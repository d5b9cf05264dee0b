// Prints responses for people ("name: value" lines, zero values included, so `stats` shows an
// empty queue as 0 rather than leaving the line out) and for programs (JSON with the proto's own
// field names, as Python's json_format and grpcurl show them).
#pragma once

#include <string>

#include <google/protobuf/message.h>

namespace ropewire::client {

std::string ToPrettyText(const google::protobuf::Message& message);
std::string ToJson(const google::protobuf::Message& message, bool multiline);

}  // namespace ropewire::client
