// x86 intrinsics for the hand-written kernels (and the benchmark's machine probes), compiled per
// function with target attributes and chosen at run time, so one binary runs on any x86-64.
// ROPEWIRE_X86 is defined where they are available.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics pass an undefined vector as the masked-off source, which
// -W(maybe-)uninitialized reports wherever they are inlined; no lane of it is ever read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define ROPEWIRE_X86 1

namespace ropewire::kernels::cpu {
// F16C (half <-> single conversions), from CPUID: GCC's __builtin_cpu_supports knows "f16c",
// clang 14's (the sanitizer and fuzz build) does not.
inline bool CpuHasF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
}  // namespace ropewire::kernels::cpu
#endif
