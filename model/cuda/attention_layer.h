// The attention half of every layer on the GPU: the paged KV cache (all layers, one allocation
// sized from the memory budget), each layer's positional encoding on the device (RoPE tables per
// sequence, ALiBi slopes, T5 bias) and the per-step attention plans of kernels/cuda.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/paged_kv.h"
#include "model/config.h"
#include "model/cuda/cuda_decoder.h"
#include "model/cuda/step_inputs.h"
#include "model/step_plan.h"

namespace ropewire::model::cuda {

template <typename T>
class AttentionLayers {
 public:
  // Sizes the cache: options.num_blocks, or what gpu_memory_utilization of the device leaves
  // now (so weights and activations must already be allocated).
  static absl::StatusOr<std::unique_ptr<AttentionLayers>> Create(const ModelConfig& config,
                                                                 const CudaDecoderOptions& options);

  const kernels::KvGeometry& geometry() const { return geometry_; }
  int64_t cache_bytes() const { return static_cast<int64_t>(cache_.bytes()); }

  // Once per step, after the inputs are uploaded: RoPE tables of the step's sequences and the
  // attention plans.
  absl::Status Prepare(const StepPlan& plan, cudaStream_t stream);
  // Appends layer `index`'s keys and values from the fused qkv rows ([q | k | v], qkv_stride
  // apart) and writes its attention output.
  absl::Status Run(int index, const T* qkv, int64_t qkv_stride, const StepInputs& inputs, T* out,
                   int64_t out_stride, cudaStream_t stream);

 private:
  struct Layer {
    kernels::PositionEncoding position;
    kernels::cuda::DeviceRopeTableSet* rope = nullptr;  // null without RoPE
    kernels::cuda::DeviceScoreBias bias;
    kernels::cuda::AttentionParams params;  // device pointers filled per step
    int plan = 0;                           // index into plans_
  };

  AttentionLayers() = default;
  kernels::KvLayerView<T> Pages(int index) const;

  kernels::KvGeometry geometry_;
  kernels::cuda::DeviceBuffer cache_;  // [layer][K pages | V pages]
  std::vector<Layer> layers_;
  std::vector<std::unique_ptr<kernels::cuda::DeviceRopeTableSet>> rope_sets_;
  // One plan per distinct (sliding window, position kind) among the layers.
  std::vector<kernels::cuda::PagedAttentionPlan> plans_;
  std::vector<int> plan_owner_;  // the first layer that uses each plan
};

}  // namespace ropewire::model::cuda
