// libFuzzer target: a .safetensors file's header (its length prefix, the JSON, every tensor
// entry's dtype, shape and data offsets against the file's size). The input is the whole file,
// opened through an in-memory file so the real Open() path (mmap included) runs.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, data + written, size - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  auto file = ropewire::model::SafetensorsFile::Open("/proc/self/fd/" + std::to_string(fd));
  if (file.ok()) {
    // Touch what a loader would read: every tensor's bytes as f32 where the dtype allows.
    for (const auto& [name, info] : (*file)->tensors()) {
      if (info.NumElements() > (1 << 16)) continue;
      std::string out(static_cast<size_t>(info.NumElements()) * sizeof(float), '\0');
      (void)ropewire::model::ConvertToF32(info.dtype, info.data, info.NumElements(),
                                          reinterpret_cast<float*>(out.data()));
    }
  }
  close(fd);
  return 0;
}
