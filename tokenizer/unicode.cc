#include "tokenizer/unicode.h"

#include <unicode/uchar.h>

namespace ropewire::tokenizer {
namespace {

bool IsContinuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Valid range of the second byte of a sequence, which rules out overlongs, surrogates and
// values above U+10FFFF (Unicode Table 3-7).
bool SecondByteInRange(unsigned char lead, unsigned char second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return IsContinuation(second);
  }
}

// Expected length of a sequence starting with `lead`, or 0 when `lead` can never start one.
int ExpectedLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Examines the sequence at `bytes[pos]`. Returns its length when well formed; otherwise sets
// `invalid_length` to the length of the maximal ill-formed subpart (at least 1) and returns 0.
// `truncated` is set when the sequence is a valid prefix cut short by the end of the input.
int CheckSequence(std::string_view bytes, size_t pos, int& invalid_length, bool& truncated) {
  truncated = false;
  const auto lead = static_cast<unsigned char>(bytes[pos]);
  const int expected = ExpectedLength(lead);
  if (expected == 1) return 1;
  invalid_length = 1;
  if (expected == 0) return 0;
  for (int i = 1; i < expected; ++i) {
    if (pos + i >= bytes.size()) {
      truncated = true;
      invalid_length = i;
      return 0;
    }
    const auto byte = static_cast<unsigned char>(bytes[pos + i]);
    const bool ok = i == 1 ? SecondByteInRange(lead, byte) : IsContinuation(byte);
    if (!ok) {
      invalid_length = i;
      return 0;
    }
  }
  return expected;
}

}  // namespace

char32_t NextCodePoint(std::string_view text, size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const int length = Utf8SequenceLength(lead);
  char32_t cp = lead & (0xFF >> (length + 1));
  for (int i = 1; i < length && pos + i < text.size(); ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  }
  pos += length;
  return cp;
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t FirstInvalidUtf8Offset(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int invalid_length = 0;
    bool truncated = false;
    const int length = CheckSequence(text, pos, invalid_length, truncated);
    if (length == 0) return pos;
    pos += length;
  }
  return text.size();
}

bool IsValidUtf8(std::string_view text) { return FirstInvalidUtf8Offset(text) == text.size(); }

size_t AppendUtf8Lossy(std::string_view bytes, bool final, std::string& out) {
  size_t pos = 0;
  size_t run_start = 0;  // start of the current run of well-formed bytes, copied in one go
  while (pos < bytes.size()) {
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    int invalid_length = 0;
    bool truncated = false;
    const int length = CheckSequence(bytes, pos, invalid_length, truncated);
    if (length > 0) {
      pos += length;
      continue;
    }
    out.append(bytes.substr(run_start, pos - run_start));
    if (truncated && !final) return pos;  // may still become a character
    out.append(kReplacementChar);
    pos += invalid_length;
    run_start = pos;
  }
  out.append(bytes.substr(run_start, pos - run_start));
  return pos;
}

bool IsWhitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE);
}

bool IsNumeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto mask = U_GET_GC_MASK(static_cast<UChar32>(cp));
  return (mask & (U_GC_ND_MASK | U_GC_NL_MASK | U_GC_NO_MASK)) != 0;
}

bool IsAlphanumeric(char32_t cp) {
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_ALPHABETIC) || IsNumeric(cp);
}

bool IsPunctuation(char32_t cp) {
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_P_MASK) != 0;
}

bool IsCombiningMark(char32_t cp) {
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_M_MASK) != 0;
}

bool IsRegexWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
           cp == '_';
  }
  const auto c = static_cast<UChar32>(cp);
  const auto mask = U_GET_GC_MASK(c);
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) ||
         (mask & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

}  // namespace ropewire::tokenizer
