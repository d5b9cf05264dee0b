// UTF-8 decoding for the server's checks and log escaping.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace ropewire::server {

// Length of the well-formed UTF-8 sequence starting at text[i] (1 to 4), with its code point in
// `*code_point`; 0 when the bytes there are not one (overlong forms, surrogates and code points
// past U+10FFFF are not).
inline int Utf8SequenceAt(absl::string_view text, size_t i, uint32_t* code_point) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char lead = s[i];
  int extra = 0;
  uint32_t min = 0, code = 0;
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    extra = 1, min = 0x80, code = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    extra = 2, min = 0x800, code = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    extra = 3, min = 0x10000, code = lead & 0x07;
  } else {
    return 0;
  }
  if (static_cast<size_t>(extra) > text.size() - i - 1) return 0;
  for (int k = 1; k <= extra; ++k) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    code = (code << 6) | (s[i + k] & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  *code_point = code;
  return extra + 1;
}

// Whether `text` is well-formed UTF-8; `*error_at` is the offset of the first bad byte if not.
inline bool IsValidUtf8(absl::string_view text, size_t* error_at = nullptr) {
  uint32_t code_point = 0;
  for (size_t i = 0; i < text.size();) {
    const int length = Utf8SequenceAt(text, i, &code_point);
    if (length == 0) {
      if (error_at != nullptr) *error_at = i;
      return false;
    }
    i += static_cast<size_t>(length);
  }
  return true;
}

}  // namespace ropewire::server
