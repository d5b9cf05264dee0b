// Storage of the paged KV cache on the CPU: every layer's K and V pages for a fixed number of
// blocks. Which block belongs to which sequence is the scheduler's business; this class only
// holds the numbers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/status/statusor.h"
#include "kernels/paged_kv.h"
#include "model/config.h"

namespace ropewire::model::cpu {

class CpuKvCache {
 public:
  static absl::StatusOr<std::unique_ptr<CpuKvCache>> Create(const ModelConfig& config,
                                                            int num_blocks, int block_size,
                                                            kernels::KvDtype dtype);
  // Bytes one block takes across all layers (K and V), for sizing the cache from a budget.
  static int64_t BytesPerBlock(const ModelConfig& config, int block_size, kernels::KvDtype dtype);

  const kernels::KvGeometry& geometry() const { return geometry_; }
  int num_layers() const { return num_layers_; }
  // One layer's pages, elements of geometry().dtype.
  kernels::KvLayerView<void> Layer(int layer);
  kernels::KvLayerView<const void> ConstLayer(int layer) const;

 private:
  CpuKvCache() = default;
  kernels::KvGeometry geometry_;
  int num_layers_ = 0;
  struct FreeStorage {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  // Huge-page advised, like the weights: decode attention streams the pages of every sequence.
  std::unique_ptr<uint8_t, FreeStorage> storage_;
};

}  // namespace ropewire::model::cpu
