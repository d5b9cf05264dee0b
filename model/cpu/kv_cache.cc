#include "model/cpu/kv_cache.h"

#include <new>

#include "absl/strings/str_cat.h"
#include "base/huge_page_allocator.h"

namespace ropewire::model::cpu {

int64_t CpuKvCache::BytesPerBlock(const ModelConfig& config, int block_size,
                                  kernels::KvDtype dtype) {
  return int64_t(2) * config.num_layers * config.num_kv_heads * config.head_dim * block_size *
         kernels::KvDtypeBytes(dtype);
}

absl::StatusOr<std::unique_ptr<CpuKvCache>> CpuKvCache::Create(const ModelConfig& config,
                                                               int num_blocks, int block_size,
                                                               kernels::KvDtype dtype) {
  if (num_blocks <= 0 || block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache needs a positive block count and size, got ", num_blocks,
                     " blocks of ", block_size));
  }
  std::unique_ptr<CpuKvCache> cache(new CpuKvCache());
  cache->num_layers_ = config.num_layers;
  cache->geometry_ = {num_blocks, block_size, config.num_kv_heads, config.head_dim, dtype};
  const size_t bytes = size_t(2 * cache->geometry_.LayerElements() * config.num_layers) *
                       size_t(kernels::KvDtypeBytes(dtype));
  // Left uninitialised: a slot is always written before any query can see it.
  cache->storage_.reset(static_cast<uint8_t*>(AllocateHugePageAdvised(bytes)));
  if (!cache->storage_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", bytes, " bytes for ", num_blocks, " KV blocks"));
  }
  return cache;
}

kernels::KvLayerView<void> CpuKvCache::Layer(int layer) {
  const int64_t layer_bytes = geometry_.LayerElements() * kernels::KvDtypeBytes(geometry_.dtype);
  uint8_t* base = storage_.get() + 2 * layer_bytes * layer;
  return {base, base + layer_bytes};
}

kernels::KvLayerView<const void> CpuKvCache::ConstLayer(int layer) const {
  const int64_t layer_bytes = geometry_.LayerElements() * kernels::KvDtypeBytes(geometry_.dtype);
  const uint8_t* base = storage_.get() + 2 * layer_bytes * layer;
  return {base, base + layer_bytes};
}

}  // namespace ropewire::model::cpu
