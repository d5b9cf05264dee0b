#include "model/cuda/device_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "base/status_macros.h"
#include "kernels/cuda/convert.h"

namespace ropewire::model::cuda {
namespace {

// qkv rows [q heads; k heads; v heads] of head_dim rows each → padded_head_dim rows each, the
// extra rows zero; `cols` 1 for the bias.
std::vector<float> PadHeadRows(const float* src, int64_t cols, const HeadLayout& heads) {
  const int64_t d = heads.head_dim, padded = heads.padded_head_dim;
  const int total_heads = heads.num_heads + 2 * heads.num_kv_heads;
  std::vector<float> out(static_cast<size_t>(total_heads * padded * cols), 0.0f);
  for (int h = 0; h < total_heads; ++h) {
    std::copy_n(src + h * d * cols, d * cols, out.begin() + h * padded * cols);
  }
  return out;
}

// o_proj [hidden, heads * head_dim] → [hidden, heads * padded_head_dim], the extra columns zero.
std::vector<float> PadHeadColumns(const model::Weight& m, const HeadLayout& heads) {
  const int64_t d = heads.head_dim, padded = heads.padded_head_dim;
  const std::vector<float> host = m.ToF32();
  std::vector<float> out(static_cast<size_t>(m.rows() * heads.num_heads * padded), 0.0f);
  for (int64_t r = 0; r < m.rows(); ++r) {
    for (int h = 0; h < heads.num_heads; ++h) {
      std::copy_n(host.data() + r * m.cols() + h * d, d,
                  out.begin() + (r * heads.num_heads + h) * padded);
    }
  }
  return out;
}

template <typename T>
class Uploader {
 public:
  Uploader(const HeadLayout& heads, cudaStream_t stream) : heads_(heads), stream_(stream) {}

  absl::StatusOr<DeviceBuffer> Vector(const std::vector<float>& host) {
    if (host.empty()) return DeviceBuffer();
    bytes_ += static_cast<int64_t>(host.size() * sizeof(T));
    return kernels::cuda::UploadAs<T>(host.data(), static_cast<int64_t>(host.size()), stream_);
  }

  // Any host format: f32 as it is, others widened to f32 on the host one matrix at a time.
  absl::StatusOr<DeviceMatrix> Matrix(const model::Weight& host) {
    if (host.format() == kernels::WeightFormat::kF32) {
      return Matrix(host.f32(), host.rows(), host.cols());
    }
    const std::vector<float> widened = host.ToF32();
    return Matrix(widened.data(), host.rows(), host.cols());
  }

  absl::StatusOr<DeviceMatrix> Matrix(const float* host, int64_t rows, int64_t cols) {
    DeviceMatrix m;
    m.rows = rows;
    m.cols = cols;
    if (rows * cols == 0) return m;
    bytes_ += rows * cols * static_cast<int64_t>(sizeof(T));
    ASSIGN_OR_RETURN(m.data, kernels::cuda::UploadAs<T>(host, rows * cols, stream_));
    return m;
  }

  // The fused qkv weight and bias and o_proj, in the device's head layout.
  absl::Status Attention(const DecoderLayerWeights& host, DeviceLayer* l) {
    if (!heads_.padded()) {
      ASSIGN_OR_RETURN(l->qkv, Matrix(host.qkv));
      ASSIGN_OR_RETURN(l->qkv_bias, Vector(host.qkv_bias));
      ASSIGN_OR_RETURN(l->o_proj, Matrix(host.o_proj));
      return absl::OkStatus();
    }
    const int64_t padded_rows =
        int64_t(heads_.num_heads + 2 * heads_.num_kv_heads) * heads_.padded_head_dim;
    const std::vector<float> qkv = PadHeadRows(host.qkv.ToF32().data(), host.qkv.cols(), heads_);
    ASSIGN_OR_RETURN(l->qkv, Matrix(qkv.data(), padded_rows, host.qkv.cols()));
    if (!host.qkv_bias.empty()) {
      ASSIGN_OR_RETURN(l->qkv_bias, Vector(PadHeadRows(host.qkv_bias.data(), 1, heads_)));
    }
    const std::vector<float> o_proj = PadHeadColumns(host.o_proj, heads_);
    ASSIGN_OR_RETURN(l->o_proj, Matrix(o_proj.data(), host.o_proj.rows(),
                                       int64_t(heads_.num_heads) * heads_.padded_head_dim));
    return absl::OkStatus();
  }

  absl::StatusOr<DeviceNorm> Norm(const NormWeights& host) {
    DeviceNorm n;
    ASSIGN_OR_RETURN(n.weight, Vector(host.weight));
    ASSIGN_OR_RETURN(n.bias, Vector(host.bias));
    return n;
  }

  absl::StatusOr<DeviceLayer> Layer(const DecoderLayerWeights& host) {
    DeviceLayer l;
    ASSIGN_OR_RETURN(l.attn_norm, Norm(host.attn_norm));
    ASSIGN_OR_RETURN(l.mlp_norm, Norm(host.mlp_norm));
    RETURN_IF_ERROR(Attention(host, &l));
    ASSIGN_OR_RETURN(l.o_bias, Vector(host.o_bias));
    ASSIGN_OR_RETURN(l.up, Matrix(host.up));
    ASSIGN_OR_RETURN(l.up_bias, Vector(host.up_bias));
    ASSIGN_OR_RETURN(l.down, Matrix(host.down));
    ASSIGN_OR_RETURN(l.down_bias, Vector(host.down_bias));
    return l;
  }

  int64_t bytes() const { return bytes_; }

 private:
  HeadLayout heads_;
  cudaStream_t stream_;
  int64_t bytes_ = 0;
};

}  // namespace

template <typename T>
absl::StatusOr<DeviceWeights> UploadWeights(const DecoderWeights& w, const HeadLayout& heads,
                                            cudaStream_t stream) {
  Uploader<T> up(heads, stream);
  DeviceWeights d;
  ASSIGN_OR_RETURN(d.embed_tokens, up.Matrix(w.embed_tokens));
  ASSIGN_OR_RETURN(d.embed_norm, up.Norm(w.embed_norm));
  ASSIGN_OR_RETURN(d.project_in, up.Matrix(w.project_in));
  ASSIGN_OR_RETURN(d.project_out, up.Matrix(w.project_out));
  ASSIGN_OR_RETURN(d.position_table, up.Matrix(w.position_table));
  for (const DecoderLayerWeights& layer : w.layers) {
    ASSIGN_OR_RETURN(DeviceLayer device_layer, up.Layer(layer));
    d.layers.push_back(std::move(device_layer));
  }
  ASSIGN_OR_RETURN(d.final_norm, up.Norm(w.final_norm));
  ASSIGN_OR_RETURN(d.lm_head, up.Matrix(w.lm_head));
  ASSIGN_OR_RETURN(d.lm_head_bias, up.Vector(w.lm_head_bias));
  d.bytes = up.bytes();
  return d;
}

template absl::StatusOr<DeviceWeights> UploadWeights<__nv_bfloat16>(const DecoderWeights&,
                                                                    const HeadLayout&,
                                                                    cudaStream_t);
template absl::StatusOr<DeviceWeights> UploadWeights<__half>(const DecoderWeights&,
                                                             const HeadLayout&, cudaStream_t);

}  // namespace ropewire::model::cuda
