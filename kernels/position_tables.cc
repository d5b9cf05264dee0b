// Tables and functions of the non-rotary positional encodings (kernels/position_encoding.h),
// each in the reference implementation's fp32 arithmetic so unit tests can compare exactly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/position_encoding.h"

namespace ropewire::kernels {

std::vector<float> AlibiSlopes(int num_heads) {
  int power_of_two = 1;
  while (power_of_two * 2 <= num_heads) power_of_two *= 2;
  // base = 2^(-2^-(log2(n) - 3)) = 2^(-8/n), rounded to fp32 before the powers are taken.
  auto series_base = [](int n) {
    return static_cast<float>(std::pow(2.0, -std::pow(2.0, -(std::log2(double(n)) - 3.0))));
  };
  std::vector<float> slopes;
  const float base = series_base(power_of_two);
  for (int k = 1; k <= power_of_two; ++k) slopes.push_back(std::pow(base, float(k)));
  if (power_of_two != num_heads) {
    const float extra_base = series_base(2 * power_of_two);
    const int extra = std::min(power_of_two, num_heads - power_of_two);
    for (int i = 0; i < extra; ++i) slopes.push_back(std::pow(extra_base, float(2 * i + 1)));
  }
  return slopes;
}

std::vector<float> MptAlibiSlopes(int num_heads, double bias_max) {
  int n = 1;
  while (n < num_heads) n *= 2;
  const float step = static_cast<float>(bias_max / n);
  std::vector<float> all(n);
  for (int k = 1; k <= n; ++k) all[k - 1] = 1.0f / std::pow(2.0f, float(k) * step);
  if (n == num_heads) return all;
  std::vector<float> slopes;
  for (int k = 1; k < n; k += 2) slopes.push_back(all[k]);
  for (int k = 0; k < n; k += 2) slopes.push_back(all[k]);
  slopes.resize(num_heads);
  return slopes;
}

int T5RelativePositionBucket(int64_t relative, bool bidirectional, int num_buckets,
                             int max_distance) {
  int bucket = 0;
  int64_t distance;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative > 0) bucket += num_buckets;
    distance = std::llabs(relative);
  } else {
    distance = relative < 0 ? -relative : 0;  // keys after the query share bucket 0
  }
  const int max_exact = num_buckets / 2;
  if (distance < max_exact) return bucket + static_cast<int>(distance);
  // fp32 in the reference's order: log(r / max_exact) / ln(max_distance / max_exact) * span.
  const float log_ratio = std::log(static_cast<float>(distance) / static_cast<float>(max_exact));
  const float scaled = log_ratio / static_cast<float>(std::log(double(max_distance) / max_exact)) *
                       static_cast<float>(num_buckets - max_exact);
  const int64_t large = max_exact + static_cast<int64_t>(scaled);
  return bucket + static_cast<int>(std::min<int64_t>(large, num_buckets - 1));
}

float RoundToBfloat16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  bits &= 0xFFFF0000u;
  std::memcpy(&x, &bits, sizeof(bits));
  return x;
}

std::vector<float> SinusoidalPositionTable(int64_t num_rows, int dim, int padding_idx) {
  const int half = dim / 2;
  const float step = static_cast<float>(std::log(10000.0) / (half - 1));
  std::vector<float> frequencies(half);
  for (int k = 0; k < half; ++k) frequencies[k] = std::exp(static_cast<float>(k) * -step);
  std::vector<float> table(num_rows * dim, 0.0f);
  for (int64_t row = 0; row < num_rows; ++row) {
    if (row == padding_idx) continue;
    float* out = table.data() + row * dim;
    for (int k = 0; k < half; ++k) {
      const float angle = static_cast<float>(row) * frequencies[k];
      out[k] = std::sin(angle);
      out[half + k] = std::cos(angle);
    }
  }
  return table;
}

}  // namespace ropewire::kernels
