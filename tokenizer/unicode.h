// UTF-8 and Unicode character helpers shared by the tokenizer stages.
//
// Character classes follow the definitions the reference `tokenizers` library uses (Rust's
// `char` methods), answered from ICU's character database.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ropewire::tokenizer {

// U+FFFD, the replacement character emitted for bytes that are not valid UTF-8.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Length of the UTF-8 sequence that starts with `lead` (1 for anything that is not a valid
// multi-byte lead, so callers always make progress).
inline int Utf8SequenceLength(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Decodes the code point at `text[pos]` of text known to be valid UTF-8; advances `pos`.
char32_t NextCodePoint(std::string_view text, size_t& pos);

// Appends the UTF-8 encoding of `cp`.
void AppendUtf8(char32_t cp, std::string& out);

// True when `text` is well-formed UTF-8 (no surrogates, overlongs or values above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Byte offset of the first ill-formed sequence, or text.size() when the text is valid.
size_t FirstInvalidUtf8Offset(std::string_view text);

// Converts bytes to UTF-8 the way Rust's `String::from_utf8_lossy` does: each maximal ill-formed
// subpart becomes one U+FFFD. When `final` is false, a trailing sequence that is still a valid
// prefix of a character is left unconsumed. Returns the number of bytes consumed.
size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string& out);

// Rust `char::is_whitespace`: the Unicode White_Space property.
bool IsWhitespace(char32_t cp);
// Rust `char::is_numeric`: general categories Nd, Nl, No.
bool IsNumeric(char32_t cp);
// Rust `char::is_alphanumeric`: Alphabetic or numeric.
bool IsAlphanumeric(char32_t cp);
// Unicode punctuation (general category P*), as the reference's Punctuation pre-tokenizer tests.
bool IsPunctuation(char32_t cp);
// General category M (Mn, Mc, Me), as the reference's StripAccents normalizer tests.
bool IsCombiningMark(char32_t cp);
// Word character of Rust's `regex` crate (`\w`): Alphabetic, M, Nd, Pc, Join_Control.
bool IsRegexWordChar(char32_t cp);

}  // namespace ropewire::tokenizer
