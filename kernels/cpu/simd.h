// Hot loops are compiled once per instruction set and picked at load time (GCC function
// multi-versioning), so one binary runs on any x86-64 and still uses AVX-512 / AVX2+FMA.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ROPEWIRE_SIMD_CLONES \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define ROPEWIRE_SIMD_CLONES
#endif
