#include "client/message_printer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ropewire::client {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// One scalar value of `field`; `index` < 0 for a singular field.
std::string ScalarText(const Message& m, const FieldDescriptor* field, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, field, index) : r->GetInt32(m, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, field, index) : r->GetInt64(m, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, field, index) : r->GetUInt32(m, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, field, index) : r->GetUInt64(m, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(m, field, index) : r->GetDouble(m, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(m, field, index) : r->GetFloat(m, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, field, index) : r->GetBool(m, field)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, field, index) : r->GetEnum(m, field))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, field, index) : r->GetString(m, field);
    case FieldDescriptor::CPPTYPE_MESSAGE: return "<message>";
  }
  return "";
}

void AppendFields(const Message& m, int indent, std::string* out);

void AppendMap(const Message& m, const FieldDescriptor* field, int indent, std::string* out) {
  const Reflection* r = m.GetReflection();
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < r->FieldSize(m, field); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, field, i);
    const auto* type = entry.GetDescriptor();
    entries.emplace_back(ScalarText(entry, type->map_key(), -1),
                         ScalarText(entry, type->map_value(), -1));
  }
  std::sort(entries.begin(), entries.end());  // map order is unspecified on the wire
  for (const auto& [key, value] : entries) {
    absl::StrAppend(out, std::string(indent, ' '), key, ": ", value, "\n");
  }
}

void AppendField(const Message& m, const FieldDescriptor* field, int indent, std::string* out) {
  const Reflection* r = m.GetReflection();
  const std::string pad(indent, ' ');
  if (field->is_map()) {
    absl::StrAppend(out, pad, field->name(), ":\n");
    AppendMap(m, field, indent + 2, out);
  } else if (field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    for (int i = 0; i < r->FieldSize(m, field); ++i) {
      absl::StrAppend(out, pad, field->name(), "[", i, "]:\n");
      AppendFields(r->GetRepeatedMessage(m, field, i), indent + 2, out);
    }
  } else if (field->is_repeated()) {
    std::vector<std::string> values;
    for (int i = 0; i < r->FieldSize(m, field); ++i) values.push_back(ScalarText(m, field, i));
    absl::StrAppend(out, pad, field->name(), ": ", absl::StrJoin(values, " "), "\n");
  } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    absl::StrAppend(out, pad, field->name(), ":\n");
    AppendFields(r->GetMessage(m, field), indent + 2, out);
  } else {
    absl::StrAppend(out, pad, field->name(), ": ", ScalarText(m, field, -1), "\n");
  }
}

void AppendFields(const Message& m, int indent, std::string* out) {
  const auto* descriptor = m.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i)
    AppendField(m, descriptor->field(i), indent, out);
}

}  // namespace

std::string ToPrettyText(const Message& message) {
  std::string out;
  AppendFields(message, 0, &out);
  return out;
}

std::string ToJson(const Message& message, bool multiline) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = multiline;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace ropewire::client
