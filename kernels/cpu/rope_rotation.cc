#include "kernels/cpu/rope_rotation.h"

#include <cstring>
#include <vector>

#include "kernels/cpu/simd.h"

namespace ropewire::kernels {

namespace {

// The rotation of ApplyRope over non-overlapping arrays, vectorised (attention rotates every key
// it reads, so this runs once per cached key, head and layer of every step).
inline void RotateNeoxRow(const float* __restrict x, const float* __restrict cos,
                          const float* __restrict sin, float* __restrict out, int half) {
#pragma omp simd
  for (int k = 0; k < half; ++k) {
    const float a = x[k];
    const float b = x[k + half];
    out[k] = a * cos[k] - b * sin[k];
    out[k + half] = b * cos[k] + a * sin[k];
  }
}

inline void RotateInterleavedRow(const float* __restrict x, const float* __restrict cos,
                                 const float* __restrict sin, float* __restrict out, int half) {
#pragma omp simd
  for (int k = 0; k < half; ++k) {
    const float a = x[2 * k];
    const float b = x[2 * k + 1];
    out[2 * k] = a * cos[k] - b * sin[k];
    out[2 * k + 1] = b * cos[k] + a * sin[k];
  }
}

// `rows` consecutive positions in one call: one multi-versioned dispatch per block of keys
// rather than per key (a head of 64 is only four vectors of work).
ROPEWIRE_SIMD_CLONES
void RotateRows(RopeLayout layout, const float* __restrict x, int64_t x_stride,
                const float* __restrict cos, const float* __restrict sin, int half,
                float* __restrict out, int64_t out_stride, int rows) {
  for (int r = 0; r < rows; ++r) {
    const float* c = cos + int64_t(r) * half;
    const float* s = sin + int64_t(r) * half;
    if (layout == RopeLayout::kNeox) {
      RotateNeoxRow(x + r * x_stride, c, s, out + r * out_stride, half);
    } else {
      RotateInterleavedRow(x + r * x_stride, c, s, out + r * out_stride, half);
    }
  }
}

}  // namespace

void ApplyRope(const RopeSpec& spec, const float* cos, const float* sin, const float* x, float* out,
               int head_dim) {
  const int half = spec.rotary_dim / 2;
  // In place: rotate from a copy, so the vectorised loops never see overlapping arrays.
  constexpr int kMaxStackRotary = 1024;
  float copy[kMaxStackRotary];
  std::vector<float> large;
  const float* src = x;
  if (out == x) {
    float* dst = copy;
    if (spec.rotary_dim > kMaxStackRotary) {
      large.resize(spec.rotary_dim);
      dst = large.data();
    }
    std::memcpy(dst, x, sizeof(float) * spec.rotary_dim);
    src = dst;
  }
  RotateRows(spec.layout, src, 0, cos, sin, half, out, 0, 1);
  if (out != x) {
    std::memcpy(out + spec.rotary_dim, x + spec.rotary_dim,
                sizeof(float) * (head_dim - spec.rotary_dim));
  }
}

void ApplyRopeToRows(const RopeTable& table, int64_t first_position, const float* x,
                     int64_t x_stride, float* out, int64_t out_stride, int rows, int head_dim) {
  const RopeSpec& spec = table.spec();
  RotateRows(spec.layout, x, x_stride, table.Cos(first_position), table.Sin(first_position),
             spec.rotary_dim / 2, out, out_stride, rows);
  if (spec.rotary_dim < head_dim) {
    for (int r = 0; r < rows; ++r) {
      std::memcpy(out + r * out_stride + spec.rotary_dim, x + r * x_stride + spec.rotary_dim,
                  sizeof(float) * (head_dim - spec.rotary_dim));
    }
  }
}

}  // namespace ropewire::kernels
