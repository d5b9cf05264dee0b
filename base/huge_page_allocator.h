// An allocator for large, long-lived, streamed arrays (model weights): allocations of 2 MiB and
// more are 2 MiB-aligned and advised into transparent huge pages before their first touch.
//
// Why: decode streams every weight once per token. In 4 KiB pages that costs a page walk every
// 4 KiB, a two-dimensional one under virtualisation, and on two AVX-512 cores it held decode at
// 80-86% of the machine's read bandwidth; in 2 MiB pages decode reaches 85-89%
// (bench/model/README.md). std::vector's large allocations come from mmap in 4 KiB pages, and
// khugepaged collapses them only slowly, if at all. Without THP (or with it set to "never") the
// advice is ignored and the memory behaves like any other.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace ropewire {

inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

// Raw storage: huge-page advised when `bytes` is at least one huge page. Free with std::free.
inline void* AllocateHugePageAdvised(std::size_t bytes) {
  if (bytes < kHugePageBytes) return std::malloc(bytes == 0 ? 1 : bytes);
  const std::size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* memory = std::aligned_alloc(kHugePageBytes, rounded);
  if (memory != nullptr) madvise(memory, rounded, MADV_HUGEPAGE);  // a hint; failure is harmless
  return memory;
}

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: allocator rebinding

  T* allocate(std::size_t n) {
    if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
    void* memory = AllocateHugePageAdvised(n * sizeof(T));
    if (memory == nullptr) throw std::bad_alloc();
    return static_cast<T*>(memory);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const noexcept {
    return false;
  }
};

}  // namespace ropewire
