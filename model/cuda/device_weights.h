// A decoder's weights on the GPU in the storage type T (__nv_bfloat16 or __half): the same
// pieces as model/decoder_weights.h, uploaded once at load time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/elementwise.h"
#include "model/config.h"
#include "model/decoder_weights.h"

namespace ropewire::model::cuda {

using kernels::cuda::DeviceBuffer;

struct DeviceMatrix {
  DeviceBuffer data;  // [rows, cols] row-major, empty when the host matrix was
  int64_t rows = 0;
  int64_t cols = 0;
  bool empty() const { return data.bytes() == 0; }
  template <typename T>
  const T* ptr() const {
    return data.get<const T>();
  }
};

struct DeviceNorm {
  DeviceBuffer weight;
  DeviceBuffer bias;  // empty for RMSNorm and bias-free LayerNorm
  template <typename T>
  kernels::cuda::NormParams<T> Params(const ModelConfig& config) const {
    kernels::cuda::NormParams<T> p;
    p.kind = config.norm == NormKind::kRmsNorm ? kernels::cuda::NormKind::kRmsNorm
                                               : kernels::cuda::NormKind::kLayerNorm;
    p.weight = weight.get<const T>();
    p.bias = bias.bytes() == 0 ? nullptr : bias.get<const T>();
    p.eps = config.norm_eps;
    return p;
  }
};

struct DeviceLayer {
  DeviceNorm attn_norm, mlp_norm;
  DeviceMatrix qkv, o_proj, up, down;
  DeviceBuffer qkv_bias, o_bias, up_bias, down_bias;  // empty when none
};

struct DeviceWeights {
  DeviceMatrix embed_tokens, project_in, project_out, position_table, lm_head;
  DeviceNorm embed_norm, final_norm;
  std::vector<DeviceLayer> layers;
  DeviceBuffer lm_head_bias;
  int64_t bytes = 0;  // device memory all of the above takes
};

// Head layout on the device. The attention kernels are compiled for a few head dims (the ones
// production models use); a model with another head_dim gets each head zero-padded to the next
// one: the padded channels add nothing to q·k (zeros in both), produce zero output channels that
// o_proj's padded zero columns drop, and RoPE only ever rotates the first rotary_dim channels.
struct HeadLayout {
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;         // the model's
  int padded_head_dim = 0;  // on the device
  bool padded() const { return padded_head_dim != head_dim; }
};

// Uploads every weight as T (converted on the device from f32, a bounded staging buffer at a
// time), qkv and o_proj in `heads`' padded layout; synchronises `stream` before returning.
template <typename T>
absl::StatusOr<DeviceWeights> UploadWeights(const DecoderWeights& weights, const HeadLayout& heads,
                                            cudaStream_t stream);

// A device buffer's pointer as T, or null when the buffer is empty (an absent bias).
template <typename T>
const T* OrNull(const DeviceBuffer& buffer) {
  return buffer.bytes() == 0 ? nullptr : buffer.get<const T>();
}

}  // namespace ropewire::model::cuda
