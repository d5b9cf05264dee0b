// String helpers that work with std::string_view. Debian's abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl::StrCat and absl's
// heterogeneous hash lookup do not accept std::string_view; these fill that gap.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace ropewire::tokenizer {

inline absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}
inline std::string_view ToStd(absl::string_view text) {
  return std::string_view(text.data(), text.size());
}

namespace string_util_internal {
inline void Append(std::string& out, std::string_view text) { out.append(text); }
inline void Append(std::string& out, const std::string& text) { out.append(text); }
inline void Append(std::string& out, const char* text) { out.append(text); }
inline void Append(std::string& out, absl::string_view text) { out.append(ToStd(text)); }
template <typename T>
requires(std::is_integral_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) void Append(std::string& out, T value) {
  out.append(std::to_string(value));
}
}  // namespace string_util_internal

// Concatenates strings (std or absl views, C strings) and integers.
template <typename... Pieces>
std::string Concat(const Pieces&... pieces) {
  std::string out;
  (string_util_internal::Append(out, pieces), ...);
  return out;
}

// Hash and equality that let maps keyed by std::string be searched with std::string_view.
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const {
    return absl::Hash<absl::string_view>{}(ToAbsl(text));
  }
};
struct StringViewEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

template <typename Value>
using StringMap = absl::flat_hash_map<std::string, Value, StringViewHash, StringViewEq>;
using StringSet = absl::flat_hash_set<std::string, StringViewHash, StringViewEq>;

}  // namespace ropewire::tokenizer
