// libFuzzer target: a GGUF file's bytes through the reader (header, metadata, tensor infos), and
// when they parse, through what ropewire derives from them: the model description (config and
// tensor layout) and the tokenizer. Any input must give a result or an error; never a crash, a
// leak, undefined behaviour or a hang.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/gguf_file.h"
#include "model/gguf/gguf_config.h"
#include "tokenizer/gguf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ropewire::gguf::GgufFile::Parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!file.ok()) return 0;
  (void)ropewire::model::DescribeGgufModel(**file);
  (void)ropewire::tokenizer::LoadGgufTokenizer(**file);
  return 0;
}
