// libFuzzer target: tokenizer.json loading (normalizers, pre-tokenizers and their regexes, the
// BPE model and merges, added tokens, post-processors, decoders). A tokenizer that loads must
// also encode and decode a few texts without failing badly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto tokenizer = ropewire::tokenizer::Tokenizer::FromJsonText(text, "fuzz/tokenizer.json");
  if (!tokenizer.ok()) return 0;
  for (const char* sample :
       {"Hello world", "  spaces\tand\nlines ", "héllo wörld 你好 🙂", ""}) {
    for (bool special : {true, false}) {
      auto ids = (*tokenizer)->Encode(sample, special);
      if (!ids.ok()) continue;
      (void)(*tokenizer)->Decode(*ids, /*skip_special_tokens=*/false);
      (void)(*tokenizer)->Decode(*ids, /*skip_special_tokens=*/true);
    }
  }
  return 0;
}
