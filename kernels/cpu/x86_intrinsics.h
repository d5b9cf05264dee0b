// x86 intrinsics for the hand-written kernels (and the benchmark's machine probes), compiled per
// function with target attributes and chosen at run time, so one binary runs on any x86-64.
// ROPEWIRE_X86 is defined where they are available.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics pass an undefined vector as the masked-off source, which
// -W(maybe-)uninitialized reports wherever they are inlined; no lane of it is ever read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define ROPEWIRE_X86 1
#endif
