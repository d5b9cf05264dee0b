// libFuzzer target: encoding arbitrary text (not always UTF-8) with the fixture tokenizers of
// each kind (byte-level GPT-2 and Llama-3, SentencePiece-style Llama-2, word affixes), then
// decoding the ids, whole and streamed token by token with a stop string.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/streaming.h"
#include "tokenizer/tokenizer.h"

#ifndef ROPEWIRE_SOURCE_DIR
#error "ROPEWIRE_SOURCE_DIR must name the source tree (the fixtures live there)"
#endif

namespace {

const std::vector<std::unique_ptr<ropewire::tokenizer::Tokenizer>>& Tokenizers() {
  static const auto* tokenizers = [] {
    auto* all = new std::vector<std::unique_ptr<ropewire::tokenizer::Tokenizer>>();
    for (const char* name :
         {"bytelevel_gpt2", "bytelevel_llama3", "sentencepiece_llama2", "bpe_word_affixes"}) {
      auto loaded = ropewire::tokenizer::Tokenizer::FromFile(std::string(ROPEWIRE_SOURCE_DIR) +
                                                             "/tests/fixtures/tokenizers/" + name +
                                                             "/tokenizer.json");
      if (!loaded.ok()) __builtin_trap();  // the fixtures must load
      all->push_back(std::move(*loaded));
    }
    return all;
  }();
  return *tokenizers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const auto& tokenizer : Tokenizers()) {
    auto ids = tokenizer->Encode(text, /*add_special_tokens=*/size % 2 == 0);
    if (!ids.ok()) continue;
    (void)tokenizer->Decode(*ids, /*skip_special_tokens=*/true);
    ropewire::tokenizer::TextStreamer streamer(*tokenizer, /*skip_special_tokens=*/false, {"\n\n"});
    for (int32_t id : *ids) {
      auto step = streamer.Step(id);
      if (!step.ok() || step->stop_index) break;
    }
    (void)streamer.Finish();
  }
  return 0;
}
