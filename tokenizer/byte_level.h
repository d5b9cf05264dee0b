// GPT-2's byte-to-unicode mapping: every byte becomes a printable character so byte-level BPE
// vocabularies can be stored as text ("Ġ" is the space byte 0x20).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace ropewire::tokenizer {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& Get();

  // The UTF-8 text of the character byte `b` maps to.
  std::string_view CharFor(unsigned char b) const { return chars_[b]; }
  // The byte a character stands for, if it is one of the 256 mapped characters.
  std::optional<unsigned char> ByteFor(char32_t cp) const;

  // Appends the mapped form of `bytes`.
  void Encode(std::string_view bytes, std::string& out) const;
  // Maps every character of `text` back to its byte; false (out untouched) when a character is
  // not in the alphabet.
  bool Decode(std::string_view text, std::string& out) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> chars_;
  std::array<int, 324> byte_for_code_point_;  // mapped code points are all below 324
};

}  // namespace ropewire::tokenizer
