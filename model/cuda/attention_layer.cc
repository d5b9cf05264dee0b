#include "model/cuda/attention_layer.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"

namespace ropewire::model::cuda {
namespace {

namespace kc = kernels::cuda;

// Device memory kept out of the KV cache's share for what is allocated after it: the attention
// plans' scratch (decode partitions), RoPE tables, cuBLAS's own needs.
constexpr int64_t kHeadroomBytes = int64_t(256) << 20;

absl::StatusOr<int64_t> BlocksThatFit(int64_t block_bytes, double utilization) {
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t used = static_cast<int64_t>(total_bytes - free_bytes);
  const int64_t budget =
      static_cast<int64_t>(utilization * static_cast<double>(total_bytes)) - used - kHeadroomBytes;
  if (budget < block_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("no GPU memory left for the KV cache: ", utilization, " of ",
                     total_bytes >> 20, " MiB allowed, ", used >> 20,
                     " MiB in use (weights, activations, other processes); raise "
                     "--gpu-memory-utilization or lower --max-num-batched-tokens"));
  }
  return std::min<int64_t>(budget / block_bytes, INT32_MAX);
}

}  // namespace

template <typename T>
absl::StatusOr<std::unique_ptr<AttentionLayers<T>>> AttentionLayers<T>::Create(
    const ModelConfig& c, const CudaDecoderOptions& options) {
  if (!kc::AttentionHeadDimSupported(c.head_dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.source, ": head_dim ", c.head_dim, " has no CUDA attention kernel"));
  }
  std::unique_ptr<AttentionLayers> a(new AttentionLayers());
  a->geometry_ = {0, options.block_size, c.num_kv_heads, c.head_dim};
  const int64_t block_bytes =
      2 * int64_t(c.num_layers) * a->geometry_.BlockStride() * int64_t(sizeof(T));
  int64_t blocks = options.num_blocks;
  if (blocks <= 0) {
    ASSIGN_OR_RETURN(blocks, BlocksThatFit(block_bytes, options.gpu_memory_utilization));
  }
  a->geometry_.num_blocks = static_cast<int>(blocks);
  ASSIGN_OR_RETURN(a->cache_,
                   kc::DeviceBuffer::Allocate(static_cast<size_t>(blocks * block_bytes)));

  std::map<std::pair<int, int>, int> plan_of;  // (sliding window, position kind) -> plan
  for (int i = 0; i < c.num_layers; ++i) {
    Layer layer;
    layer.position = c.position_by_layer.empty() ? c.position : c.position_by_layer[i];
    if (layer.position.kind == kernels::PositionKind::kRope) {
      if (a->rope_sets_.empty() || !c.position_by_layer.empty()) {
        a->rope_sets_.push_back(std::make_unique<kc::DeviceRopeTableSet>(layer.position.rope));
      }
      layer.rope = a->rope_sets_.back().get();
    }
    ASSIGN_OR_RETURN(layer.bias, kc::DeviceScoreBias::Upload(layer.position, c.num_heads));
    kc::AttentionParams& p = layer.params;
    p.num_heads = c.num_heads;
    p.num_kv_heads = c.num_kv_heads;
    p.head_dim = c.head_dim;
    p.softmax_scale = c.softmax_scale > 0 ? c.softmax_scale : 1.0f / std::sqrt(float(c.head_dim));
    if (c.scale_attn_by_inverse_layer_idx) p.softmax_scale /= static_cast<float>(i + 1);
    p.sliding_window = c.sliding_window.empty() ? 0 : c.sliding_window[i];
    p.alibi_slopes = layer.bias.alibi_slopes();
    p.relative_bias = layer.bias.relative_bias();
    p.relative_bias_rows = layer.bias.relative_bias_rows();
    const auto key = std::make_pair(p.sliding_window, static_cast<int>(layer.position.kind));
    auto [it, inserted] = plan_of.emplace(key, static_cast<int>(a->plans_.size()));
    if (inserted) {
      a->plans_.emplace_back();
      a->plan_owner_.push_back(i);
    }
    layer.plan = it->second;
    a->layers_.push_back(std::move(layer));
  }
  // The descriptors live in layers_ now: point the params at them.
  for (Layer& layer : a->layers_) layer.params.position = &layer.position;
  return a;
}

template <typename T>
kernels::KvLayerView<T> AttentionLayers<T>::Pages(int index) const {
  T* base = cache_.get<T>() + 2 * geometry_.LayerElements() * index;
  return {base, base + geometry_.LayerElements()};
}

template <typename T>
absl::Status AttentionLayers<T>::Prepare(const StepPlan& plan, cudaStream_t stream) {
  const kernels::RaggedBatchView host_batch = plan.BatchView();
  for (auto& set : rope_sets_) RETURN_IF_ERROR(set->Prepare(host_batch, stream));
  for (Layer& layer : layers_) {
    if (layer.rope != nullptr) layer.params.seq_rope_tables = layer.rope->per_sequence();
  }
  for (size_t p = 0; p < plans_.size(); ++p) {
    RETURN_IF_ERROR(plans_[p].Prepare(host_batch, layers_[plan_owner_[p]].params, stream));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status AttentionLayers<T>::Run(int index, const T* qkv, int64_t qkv_stride,
                                     const StepInputs& inputs, T* out, int64_t out_stride,
                                     cudaStream_t stream) {
  const Layer& layer = layers_[index];
  const int64_t q_width = int64_t(layer.params.num_heads) * geometry_.head_dim;
  const int64_t kv_width = int64_t(geometry_.num_kv_heads) * geometry_.head_dim;
  const T* k = qkv + q_width;
  const T* v = k + kv_width;
  const kernels::KvLayerView<T> pages = Pages(index);
  RETURN_IF_ERROR(kc::WriteKv(k, qkv_stride, v, qkv_stride, inputs.slots(), inputs.num_tokens(),
                              geometry_, pages, stream));
  const kernels::KvLayerView<const T> read{pages.keys, pages.values};
  return kc::PagedAttention(qkv, qkv_stride, read, geometry_, inputs.batch(), layer.params,
                            plans_[layer.plan], out, out_stride, stream);
}

template class AttentionLayers<__nv_bfloat16>;
template class AttentionLayers<__half>;

}  // namespace ropewire::model::cuda
