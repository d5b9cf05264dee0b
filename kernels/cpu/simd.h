// Hot loops are compiled once per instruction set and picked at load time (GCC function
// multi-versioning), so one binary runs on any x86-64 and still uses AVX-512 / AVX2+FMA.
// The clones name ISA levels, not processors: GCC dispatches an "arch=<cpu>" clone only on that
// exact processor model (an "arch=skylake-avx512" clone never runs on Ice Lake, Sapphire Rapids
// or Zen 4, which fall back to SSE2), while x86-64-v4 / -v3 are chosen by the CPU's features.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ROPEWIRE_SIMD_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ROPEWIRE_SIMD_CLONES
#endif
