#include "server/message_codec.h"

#include <vector>

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "server/utf8.h"

namespace ropewire::server {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

// protobuf's own limit on nested messages.
constexpr int kMaxDepth = 100;

// A field's name as the caller wrote it in the .proto, with the path of enclosing messages.
std::string FieldPath(const std::string& prefix, const FieldDescriptor& field) {
  return prefix.empty() ? field.name() : absl::StrCat(prefix, ".", field.name());
}

bool IsVarintType(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_INT32:
    case FieldDescriptor::TYPE_INT64:
    case FieldDescriptor::TYPE_UINT32:
    case FieldDescriptor::TYPE_UINT64:
    case FieldDescriptor::TYPE_SINT32:
    case FieldDescriptor::TYPE_SINT64:
    case FieldDescriptor::TYPE_BOOL:
    case FieldDescriptor::TYPE_ENUM: return true;
    default: return false;
  }
}

// The size of one value of a fixed-width packed type; 0 for other types.
int FixedWidth(FieldDescriptor::Type type) {
  switch (type) {
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
    case FieldDescriptor::TYPE_FLOAT: return 4;
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
    case FieldDescriptor::TYPE_DOUBLE: return 8;
    default: return 0;
  }
}

// Empty when the packed payload of a repeated numeric field is well formed.
std::string CheckPacked(const std::string& value, const FieldDescriptor& field,
                        const std::string& path) {
  if (const int width = FixedWidth(field.type()); width > 0) {
    if (value.size() % width == 0) return "";
    return absl::StrCat("field `", path, "`: packed values of ", value.size(),
                        " bytes are not a whole number of ", width, "-byte values");
  }
  if (!IsVarintType(field.type())) return "";
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(value.data()),
                                               static_cast<int>(value.size()));
  uint64_t ignored = 0;
  while (input.CurrentPosition() < static_cast<int>(value.size())) {
    if (!input.ReadVarint64(&ignored)) {
      return absl::StrCat("field `", path, "`: packed values are malformed (at byte ",
                          input.CurrentPosition(), " of the field)");
    }
  }
  return "";
}

std::string Diagnose(absl::string_view bytes, const Descriptor& type, const std::string& prefix,
                     int depth);

// Empty when a length-delimited value of a known field holds what its type allows.
std::string CheckLengthDelimited(const std::string& value, const FieldDescriptor& field,
                                 const std::string& prefix, int depth) {
  const std::string path = FieldPath(prefix, field);
  switch (field.type()) {
    case FieldDescriptor::TYPE_STRING: {
      size_t at = 0;
      if (IsValidUtf8(value, &at)) return "";
      return absl::StrCat("field `", path, "` is not valid UTF-8 (at byte ", at,
                          " of its value); string fields must be UTF-8");
    }
    case FieldDescriptor::TYPE_MESSAGE:
      return Diagnose(value, *field.message_type(), path, depth + 1);
    default: return field.is_repeated() ? CheckPacked(value, field, path) : "";
  }
}

std::string Diagnose(absl::string_view bytes, const Descriptor& type, const std::string& prefix,
                     int depth) {
  const std::string where = prefix.empty() ? "the message" : absl::StrCat("field `", prefix, "`");
  if (depth > kMaxDepth) return absl::StrCat(where, " nests messages more than 100 deep");
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  for (;;) {
    const int at = input.CurrentPosition();
    const uint32_t tag = input.ReadTag();
    if (tag == 0) {
      if (at == static_cast<int>(bytes.size())) return "";
      return absl::StrCat(where, " is not valid protobuf: bad field tag at byte ", at);
    }
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const auto wire_type = WireFormatLite::GetTagWireType(tag);
    const FieldDescriptor* field = type.FindFieldByNumber(number);
    if (wire_type != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&input, tag)) {
        return absl::StrCat(where, " is not valid protobuf: field ", number, " at byte ", at,
                            " is truncated or has an invalid wire type");
      }
      continue;
    }
    uint32_t length = 0;
    std::string value;
    if (!input.ReadVarint32(&length) || !input.ReadString(&value, static_cast<int>(length))) {
      return absl::StrCat(
          where, " is not valid protobuf: the value of field ",
          field ? absl::StrCat("`", FieldPath(prefix, *field), "`") : absl::StrCat(number),
          " at byte ", at, " runs past the end of the message");
    }
    if (field == nullptr) continue;  // unknown fields are kept, not refused
    if (std::string problem = CheckLengthDelimited(value, *field, prefix, depth); !problem.empty())
      return problem;
  }
}

}  // namespace

std::string DiagnoseParseFailure(absl::string_view bytes,
                                 const google::protobuf::Message& message) {
  const Descriptor& type = *message.GetDescriptor();
  std::string problem = Diagnose(bytes, type, "", 0);
  if (problem.empty()) problem = absl::StrCat("it does not parse as ", type.full_name());
  return problem;
}

absl::Status ParseRequest(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  grpc::ByteBuffer copy(buffer);  // the reader consumes its buffer; this copy shares the slices
  grpc::ProtoBufferReader reader(&copy);
  if (reader.status().ok() && message->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  // The rare path: flatten the bytes and find out what is wrong with them.
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices)
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return absl::InvalidArgumentError(
      absl::StrCat("the request message is malformed: ", DiagnoseParseFailure(bytes, *message)));
}

grpc::Status SerializeResponse(const google::protobuf::Message& message, grpc::ByteBuffer* buffer) {
  buffer->Clear();  // the writer fills an empty buffer; a streaming reactor reuses its buffer
  bool own_buffer = false;
  return grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, buffer,
                                                                         &own_buffer);
}

}  // namespace ropewire::server
