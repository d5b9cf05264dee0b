// Rotating vectors by RoPE on the CPU, from the host tables of kernels/rope_table.h (vectorised
// per instruction set: attention rotates every key it reads).
#pragma once

#include <cstdint>

#include "kernels/position_encoding.h"
#include "kernels/rope_table.h"

namespace ropewire::kernels {

// Rotates the leading spec.rotary_dim channels of `x` (head_dim long) by one position's cos/sin
// into `out`; the other channels are copied. `x` and `out` may be the same.
void ApplyRope(const RopeSpec& spec, const float* cos, const float* sin, const float* x, float* out,
               int head_dim);

// ApplyRope for `rows` vectors at consecutive positions from `first_position` (rows x_stride /
// out_stride floats apart), with the table's spec; `x` and `out` must not overlap. The table must
// cover every one of those positions.
void ApplyRopeToRows(const RopeTable& table, int64_t first_position, const float* x,
                     int64_t x_stride, float* out, int64_t out_stride, int rows, int head_dim);

}  // namespace ropewire::kernels
