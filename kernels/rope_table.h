// Host table of cos/sin per position for a RoPE spec, built with the reference implementation's
// fp32 recipe: angle = fp32(p) * inv_freq[k] in fp32, then cos/sin, then × attention_scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/position_encoding.h"

namespace ropewire::kernels {

class RopeTable {
 public:
  explicit RopeTable(const RopeSpec& spec);

  // Grows the table to cover positions [0, num_positions). Not thread-safe: the model runner
  // calls it before launching attention for a step.
  void EnsureCapacity(int64_t num_positions);

  int64_t capacity() const { return capacity_; }
  int half_dim() const { return half_dim_; }
  const RopeSpec& spec() const { return spec_; }
  // R/2 values for `position`; position must be < capacity().
  const float* Cos(int64_t position) const { return cos_.data() + position * half_dim_; }
  const float* Sin(int64_t position) const { return sin_.data() + position * half_dim_; }

 private:
  RopeSpec spec_;
  int half_dim_ = 0;
  int64_t capacity_ = 0;
  std::vector<float> cos_;
  std::vector<float> sin_;
};

// Rotates the leading spec.rotary_dim channels of `x` (head_dim long) by one position's cos/sin
// into `out`; the other channels are copied. `x` and `out` may be the same.
void ApplyRope(const RopeSpec& spec, const float* cos, const float* sin, const float* x,
               float* out, int head_dim);

}  // namespace ropewire::kernels
