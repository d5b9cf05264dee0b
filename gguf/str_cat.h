// absl::StrCat that also takes std::string_view: Debian's abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), which std::string_view does not
// convert to.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ropewire::gguf {
namespace str_cat_internal {
inline absl::string_view Piece(std::string_view text) { return {text.data(), text.size()}; }
template <typename T>
const T& Piece(const T& value) {
  return value;
}
}  // namespace str_cat_internal

template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  return absl::StrCat(str_cat_internal::Piece(pieces)...);
}

}  // namespace ropewire::gguf
