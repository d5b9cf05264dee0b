#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {

const ByteLevelAlphabet& ByteLevelAlphabet::Get() {
  static const ByteLevelAlphabet* const alphabet = new ByteLevelAlphabet();
  return *alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_for_code_point_.fill(-1);
  // Printable Latin-1 bytes keep their own code point; the rest are shifted past 255 in order.
  auto keeps_itself = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int next_shifted = 256;
  for (int b = 0; b < 256; ++b) {
    const int cp = keeps_itself(b) ? b : next_shifted++;
    AppendUtf8(static_cast<char32_t>(cp), chars_[b]);
    byte_for_code_point_[cp] = b;
  }
}

std::optional<unsigned char> ByteLevelAlphabet::ByteFor(char32_t cp) const {
  if (cp >= byte_for_code_point_.size() || byte_for_code_point_[cp] < 0) return std::nullopt;
  return static_cast<unsigned char>(byte_for_code_point_[cp]);
}

void ByteLevelAlphabet::Encode(std::string_view bytes, std::string& out) const {
  for (char b : bytes) out.append(chars_[static_cast<unsigned char>(b)]);
}

bool ByteLevelAlphabet::Decode(std::string_view text, std::string& out) const {
  const size_t original_size = out.size();
  size_t pos = 0;
  while (pos < text.size()) {
    const std::optional<unsigned char> b = ByteFor(NextCodePoint(text, pos));
    if (!b) {
      out.resize(original_size);
      return false;
    }
    out.push_back(static_cast<char>(*b));
  }
  return true;
}

}  // namespace ropewire::tokenizer
