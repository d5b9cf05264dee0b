#include "model/gguf/qk_permutation.h"

#include <cstring>

namespace ropewire::model {

std::vector<int64_t> HfRowsFromGgufQk(int64_t num_heads, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  std::vector<int64_t> order(num_heads * head_dim);
  for (int64_t head = 0; head < num_heads; ++head) {
    const int64_t base = head * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      order[base + i] = base + 2 * i;             // HF row i        ← GGUF row 2i
      order[base + half + i] = base + 2 * i + 1;  // HF row i + d/2  ← GGUF row 2i + 1
    }
  }
  return order;
}

std::vector<int64_t> GgufRowsFromHfQk(int64_t num_heads, int64_t head_dim) {
  const std::vector<int64_t> hf_from_gguf = HfRowsFromGgufQk(num_heads, head_dim);
  std::vector<int64_t> order(hf_from_gguf.size());
  for (size_t hf = 0; hf < hf_from_gguf.size(); ++hf) {
    order[hf_from_gguf[hf]] = static_cast<int64_t>(hf);
  }
  return order;
}

void GatherRows(const uint8_t* src, uint64_t row_bytes, std::span<const int64_t> order,
                uint8_t* dst) {
  for (size_t r = 0; r < order.size(); ++r) {
    std::memcpy(dst + r * row_bytes, src + static_cast<uint64_t>(order[r]) * row_bytes, row_bytes);
  }
}

}  // namespace ropewire::model
