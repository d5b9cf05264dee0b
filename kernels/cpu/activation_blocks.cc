#include "kernels/cpu/activation_blocks.h"

#include <algorithm>
#include <cmath>

namespace ropewire::kernels::cpu {

void QuantizeActivations(const float* x, int64_t n, ActivationBlock* blocks) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int q = int(std::nearbyintf(x[j] * id));
      blocks[b].qs[j] = int8_t(q);
      sum += q;
    }
    blocks[b].d = d;
    blocks[b].sum = d * float(sum);
  }
}

}  // namespace ropewire::kernels::cpu
