// Request parsing and response serialization for the methods ropewire.v1.Inference serves raw
// (as gRPC byte buffers). gRPC's own parsing answers a message that does not parse with
// UNIMPLEMENTED and an empty message; parsing here instead answers INVALID_ARGUMENT naming what
// is wrong (a string field that is not UTF-8, a truncated message, a malformed packed field).
#pragma once

#include <string>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace ropewire::server {

// Parses `buffer` into `message`; INVALID_ARGUMENT naming the problem when it does not parse.
absl::Status ParseRequest(const grpc::ByteBuffer& buffer, google::protobuf::Message* message);

// Why `bytes` do not parse as a `message`'s type, e.g. "field `prompt` is not valid UTF-8 (at
// byte 3)". Only called once parsing has failed; it walks the wire format against the
// message's descriptor. Never fails itself: the last resort is a generic description.
std::string DiagnoseParseFailure(absl::string_view bytes, const google::protobuf::Message& message);

// Serializes `message` into `buffer` (replacing what it held) for a raw method's response.
grpc::Status SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* buffer);

}  // namespace ropewire::server
