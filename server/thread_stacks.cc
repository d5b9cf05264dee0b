// Thread stacks large enough for this process's static TLS, whatever a library asks for.
//
// Debian builds civetweb (the HTTP side port) with 100 KiB thread stacks; when the CUDA backend
// is linked, libcublasLt alone brings 92 KiB of static thread-local storage, glibc cannot fit
// TLS and guard into such a stack and pthread_create fails with EINVAL, so the HTTP port would
// not open. ropewire-server defines pthread_attr_setstacksize itself (exported, so it takes
// precedence over glibc's for every library) and raises small requests to 1 MiB.
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <cstddef>

namespace {

constexpr size_t kMinimumStackBytes = size_t(1) << 20;

using SetStackSize = int (*)(pthread_attr_t*, size_t);

SetStackSize GlibcSetStackSize() {
  static const auto real =
      reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  return real;
}

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size) {
  return GlibcSetStackSize()(attr, std::max(size, kMinimumStackBytes));
}
