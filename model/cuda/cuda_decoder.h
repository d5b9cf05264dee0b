// The decoder forward pass on the GPU: model/cpu/cpu_decoder.cc's CpuDecoder step by step,
// over weights, activations and a paged KV cache in the storage type T (__nv_bfloat16 or
// __half) with f32 accumulation, on one stream, with no host round trip between layers. One
// transfer brings the step's plan in; one brings the logits rows out.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/decoder_weights.h"
#include "model/step_plan.h"

namespace ropewire::model::cuda {

struct CudaDecoderOptions {
  int block_size = 16;
  int num_blocks = 0;  // 0: sized from the memory left, below
  double gpu_memory_utilization = 0.9;
  int max_num_batched_tokens = 2048;  // activation buffers are sized for this up front
};

class CudaDecoder {
 public:
  virtual ~CudaDecoder() = default;
  virtual int num_blocks() const = 0;
  virtual int64_t weight_bytes() const = 0;
  virtual int64_t kv_cache_bytes() const = 0;
  // Runs a validated plan and returns plan.logits_rows' logits, [rows, vocab] f32.
  virtual absl::Status Forward(const StepPlan& plan, std::vector<float>* logits) = 0;
};

// Uploads the weights in the named storage type ("bf16" or "fp16"), sizes the KV cache and
// the activation buffers. Errors: no usable device, too little memory for the weights or one
// KV block (RESOURCE_EXHAUSTED), a head_dim the attention kernels lack, any CUDA error.
absl::StatusOr<std::unique_ptr<CudaDecoder>> MakeCudaDecoder(const ModelConfig& config,
                                                             const DecoderWeights& weights,
                                                             const std::string& dtype,
                                                             const CudaDecoderOptions& options);

}  // namespace ropewire::model::cuda
