// libFuzzer target: config.json resolution (every family's parser, positional-encoding
// resolution and validation) on arbitrary text. Any input must give a ModelConfig or an error;
// never a crash, a leak, undefined behaviour or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)ropewire::model::ParseModelConfig(text, "fuzz/config.json");
  return 0;
}
