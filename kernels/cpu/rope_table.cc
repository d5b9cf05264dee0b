#include "kernels/rope_table.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/simd.h"

namespace ropewire::kernels {

RopeTable::RopeTable(const RopeSpec& spec) : spec_(spec), half_dim_(spec.rotary_dim / 2) {}

void RopeTable::EnsureCapacity(int64_t num_positions) {
  if (num_positions <= capacity_) return;
  // Grow geometrically so a long generation does not rebuild the table every step.
  int64_t new_capacity = capacity_ == 0 ? 256 : capacity_;
  while (new_capacity < num_positions) new_capacity *= 2;
  cos_.resize(new_capacity * half_dim_);
  sin_.resize(new_capacity * half_dim_);
  const float scaling = spec_.attention_scaling;
  for (int64_t p = capacity_; p < new_capacity; ++p) {
    const float position = static_cast<float>(p);
    for (int k = 0; k < half_dim_; ++k) {
      const float angle = position * spec_.inv_freq[k];
      cos_[p * half_dim_ + k] = std::cos(angle) * scaling;
      sin_[p * half_dim_ + k] = std::sin(angle) * scaling;
    }
  }
  capacity_ = new_capacity;
}

ROPEWIRE_SIMD_CLONES
void ApplyRope(const RopeSpec& spec, const float* cos, const float* sin, const float* x,
               float* out, int head_dim) {
  const int half = spec.rotary_dim / 2;
  if (spec.layout == RopeLayout::kNeox) {
    for (int k = 0; k < half; ++k) {
      const float a = x[k];
      const float b = x[k + half];
      out[k] = a * cos[k] - b * sin[k];
      out[k + half] = b * cos[k] + a * sin[k];
    }
  } else {
    for (int k = 0; k < half; ++k) {
      const float a = x[2 * k];
      const float b = x[2 * k + 1];
      out[2 * k] = a * cos[k] - b * sin[k];
      out[2 * k + 1] = b * cos[k] + a * sin[k];
    }
  }
  if (out != x) {
    std::memcpy(out + spec.rotary_dim, x + spec.rotary_dim,
                sizeof(float) * (head_dim - spec.rotary_dim));
  }
}

}  // namespace ropewire::kernels
