// Typed access to tokenizer.json values. Every error names where in the file the value sits
// ("pre_tokenizer.pretokenizers[1].pattern"), so a bad file says exactly what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace ropewire::tokenizer {

using Json = nlohmann::json;

// "where: what", as an InvalidArgument error.
absl::Status JsonError(std::string_view where, std::string_view what);

// Location strings: JsonPath("model", "vocab") == "model.vocab"; JsonIndex("x", 2) == "x[2]".
std::string JsonPath(std::string_view where, std::string_view key);
std::string JsonIndex(std::string_view where, size_t index);

// A required member (present and not null) of the object at `where`.
absl::StatusOr<const Json*> RequiredMember(const Json& object, std::string_view key,
                                           std::string_view where);
// A member, or nullptr when absent or null.
const Json* OptionalMember(const Json& object, std::string_view key);

absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view where);
absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view where, std::string_view fallback);
absl::StatusOr<bool> GetBool(const Json& object, std::string_view key, std::string_view where,
                             bool fallback);
absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view where);
absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view where,
                               int64_t fallback);

// The "type" member of a component object, e.g. "ByteLevel".
absl::StatusOr<std::string> ComponentType(const Json& component, std::string_view where);

// The error for a component this implementation does not support; names the component.
absl::Status UnsupportedComponent(std::string_view where, std::string_view kind,
                                  std::string_view type);

}  // namespace ropewire::tokenizer
