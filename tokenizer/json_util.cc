#include "tokenizer/json_util.h"

#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {

absl::Status JsonError(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(Concat(where, ": ", what));
}

std::string JsonPath(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return Concat(where, ".", key);
}

std::string JsonIndex(std::string_view where, size_t index) {
  return Concat(where, "[", index, "]");
}

const Json* OptionalMember(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<const Json*> RequiredMember(const Json& object, std::string_view key,
                                           std::string_view where) {
  if (!object.is_object()) return JsonError(where, "expected a JSON object");
  const Json* member = OptionalMember(object, key);
  if (member == nullptr) return JsonError(JsonPath(where, key), "missing");
  return member;
}

absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view where) {
  auto member = RequiredMember(object, key, where);
  if (!member.ok()) return member.status();
  if (!(*member)->is_string()) return JsonError(JsonPath(where, key), "expected a string");
  return (*member)->get<std::string>();
}

absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view where, std::string_view fallback) {
  if (OptionalMember(object, key) == nullptr) return std::string(fallback);
  return GetString(object, key, where);
}

absl::StatusOr<bool> GetBool(const Json& object, std::string_view key, std::string_view where,
                             bool fallback) {
  const Json* member = OptionalMember(object, key);
  if (member == nullptr) return fallback;
  if (!member->is_boolean()) return JsonError(JsonPath(where, key), "expected true or false");
  return member->get<bool>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view where) {
  auto member = RequiredMember(object, key, where);
  if (!member.ok()) return member.status();
  if (!(*member)->is_number_integer()) {
    return JsonError(JsonPath(where, key), "expected an integer");
  }
  return (*member)->get<int64_t>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view where,
                               int64_t fallback) {
  if (OptionalMember(object, key) == nullptr) return fallback;
  return GetInt(object, key, where);
}

absl::StatusOr<std::string> ComponentType(const Json& component, std::string_view where) {
  if (!component.is_object()) return JsonError(where, "expected a JSON object");
  return GetString(component, "type", where);
}

absl::Status UnsupportedComponent(std::string_view where, std::string_view kind,
                                  std::string_view type) {
  return absl::UnimplementedError(Concat(where, ": unsupported ", kind, " type '", type, "'"));
}

}  // namespace ropewire::tokenizer
