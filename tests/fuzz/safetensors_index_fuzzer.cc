// libFuzzer target: model.safetensors.index.json (the weight map naming each tensor's shard).
// The input is the index file of a model directory that also holds two small valid shards, so
// an index naming them reaches the shard loading and the duplicate-tensor checks.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "model/safetensors.h"

namespace {

// A safetensors file holding one F32 tensor `name` of two values.
std::string Shard(const std::string& name) {
  const std::string header =
      "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  std::string file(8, '\0');
  const uint64_t length = header.size();
  std::memcpy(file.data(), &length, 8);
  return file + header + std::string(8, '\0');
}

const std::string& ModelDir() {
  static const std::string dir = [] {
    char dir_template[] = "/tmp/ropewire-fuzz-index-XXXXXX";
    std::string d = mkdtemp(dir_template);
    std::ofstream(d + "/a.safetensors", std::ios::binary) << Shard("a.weight");
    std::ofstream(d + "/b.safetensors", std::ios::binary) << Shard("b.weight");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = ModelDir();
  {
    std::ofstream index(dir + "/model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    index.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto store = ropewire::model::TensorStore::Open(dir);
  if (store.ok()) {
    for (const std::string& name : (*store)->Names()) (void)(*store)->Find(name);
  }
  return 0;
}
