#include "model/cpu/kv_cache.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "base/huge_page_allocator.h"

namespace ropewire::model::cpu {

int64_t CpuKvCache::BytesPerBlock(const ModelConfig& config, int block_size) {
  return int64_t(2) * config.num_layers * config.num_kv_heads * config.head_dim * block_size *
         int64_t(sizeof(float));
}

absl::StatusOr<std::unique_ptr<CpuKvCache>> CpuKvCache::Create(const ModelConfig& config,
                                                               int num_blocks, int block_size) {
  if (num_blocks <= 0 || block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache needs a positive block count and size, got ", num_blocks,
                     " blocks of ", block_size));
  }
  std::unique_ptr<CpuKvCache> cache(new CpuKvCache());
  cache->num_layers_ = config.num_layers;
  cache->geometry_ = {num_blocks, block_size, config.num_kv_heads, config.head_dim};
  const int64_t elements = 2 * cache->geometry_.LayerElements() * config.num_layers;
  // Left uninitialised: a slot is always written before any query can see it.
  cache->storage_.reset(
      static_cast<float*>(AllocateHugePageAdvised(sizeof(float) * size_t(elements))));
  if (!cache->storage_) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", elements * sizeof(float),
                                                     " bytes for ", num_blocks, " KV blocks"));
  }
  return cache;
}

kernels::KvLayerView<float> CpuKvCache::Layer(int layer) {
  float* base = storage_.get() + 2 * geometry_.LayerElements() * layer;
  return {base, base + geometry_.LayerElements()};
}

kernels::KvLayerView<const float> CpuKvCache::ConstLayer(int layer) const {
  const float* base = storage_.get() + 2 * geometry_.LayerElements() * layer;
  return {base, base + geometry_.LayerElements()};
}

}  // namespace ropewire::model::cpu
