#include "model/cuda/cuda_decoder.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/logits.h"
#include "kernels/cuda/paged_attention.h"
#include "model/cuda/attention_layer.h"
#include "model/cuda/device_weights.h"
#include "model/cuda/step_inputs.h"

namespace ropewire::model::cuda {
namespace {

namespace kc = kernels::cuda;

// Activation buffers, each sized for `capacity` token rows.
struct Activations {
  int64_t capacity = 0;
  DeviceBuffer hidden, normed, mlp_normed, qkv, attention, up, activation, embedded;
  int64_t logit_capacity = 0;
  DeviceBuffer final_rows, projected, logits;
};

template <typename T>
class CudaDecoderImpl final : public CudaDecoder {
 public:
  CudaDecoderImpl(ModelConfig config, cudaStream_t stream, kc::BlasHandle blas)
      : config_(std::move(config)), stream_(stream), blas_(std::move(blas)) {}
  ~CudaDecoderImpl() override {
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);
      cudaStreamDestroy(stream_);
    }
  }

  absl::Status Init(const DecoderWeights& weights, const HeadLayout& heads,
                    const CudaDecoderOptions& options);
  int num_blocks() const override { return attention_->geometry().num_blocks; }
  int64_t weight_bytes() const override { return w_.bytes; }
  int64_t kv_cache_bytes() const override { return attention_->cache_bytes(); }
  absl::Status Forward(const StepPlan& plan, std::vector<float>* logits) override;

 private:
  int64_t Hidden() const { return config_.hidden_size; }
  int64_t QWidth() const { return int64_t(config_.num_heads) * config_.head_dim; }
  int64_t QkvWidth() const {
    return QWidth() + 2 * int64_t(config_.num_kv_heads) * config_.head_dim;
  }
  int64_t UpRows() const { return w_.layers.front().up.rows; }
  int64_t Intermediate() const { return w_.layers.front().down.cols; }
  T* Ptr(const DeviceBuffer& b) const { return b.get<T>(); }

  absl::Status EnsureActivations(int64_t tokens);
  absl::Status EnsureLogitRows(int64_t rows);
  absl::Status Embed(int64_t tokens);
  absl::Status Mlp(const DeviceLayer& layer, const T* in, int64_t tokens);
  absl::Status RunLayer(int index, int64_t tokens);
  absl::Status Head(int64_t rows, std::vector<float>* logits);

  ModelConfig config_;
  cudaStream_t stream_ = nullptr;
  kc::BlasHandle blas_;
  DeviceWeights w_;
  std::unique_ptr<AttentionLayers<T>> attention_;
  StepInputs inputs_;
  Activations a_;
};

absl::StatusOr<DeviceBuffer> Grow(int64_t elements, size_t element_bytes) {
  return DeviceBuffer::Allocate(static_cast<size_t>(elements) * element_bytes);
}

template <typename T>
absl::Status CudaDecoderImpl<T>::EnsureActivations(int64_t tokens) {
  if (tokens <= a_.capacity) return absl::OkStatus();
  const int64_t n = std::max(tokens, a_.capacity);
  ASSIGN_OR_RETURN(a_.hidden, Grow(n * Hidden(), sizeof(T)));
  ASSIGN_OR_RETURN(a_.normed, Grow(n * Hidden(), sizeof(T)));
  if (config_.residual == ResidualLayout::kParallelTwoNorms) {
    ASSIGN_OR_RETURN(a_.mlp_normed, Grow(n * Hidden(), sizeof(T)));
  }
  ASSIGN_OR_RETURN(a_.qkv, Grow(n * QkvWidth(), sizeof(T)));
  ASSIGN_OR_RETURN(a_.attention, Grow(n * QWidth(), sizeof(T)));
  ASSIGN_OR_RETURN(a_.up, Grow(n * UpRows(), sizeof(T)));
  if (config_.gated_mlp) {
    ASSIGN_OR_RETURN(a_.activation, Grow(n * Intermediate(), sizeof(T)));
  }
  if (!w_.project_in.empty()) {
    ASSIGN_OR_RETURN(a_.embedded, Grow(n * w_.embed_tokens.cols, sizeof(T)));
  }
  a_.capacity = n;
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::EnsureLogitRows(int64_t rows) {
  if (rows <= a_.logit_capacity) return absl::OkStatus();
  const int64_t n = std::max(rows, 2 * a_.logit_capacity);
  ASSIGN_OR_RETURN(a_.final_rows, Grow(n * Hidden(), sizeof(T)));
  if (!w_.project_out.empty()) {
    ASSIGN_OR_RETURN(a_.projected, Grow(n * w_.project_out.rows, sizeof(T)));
  }
  ASSIGN_OR_RETURN(a_.logits, Grow(n * config_.vocab_size, sizeof(float)));
  a_.logit_capacity = n;
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::Init(const DecoderWeights& weights, const HeadLayout& heads,
                                      const CudaDecoderOptions& options) {
  ASSIGN_OR_RETURN(w_, UploadWeights<T>(weights, heads, stream_));
  // Activations for a full step and one logits row per sequence first; the KV cache then takes
  // what the memory budget leaves.
  RETURN_IF_ERROR(EnsureActivations(std::max(1, options.max_num_batched_tokens)));
  RETURN_IF_ERROR(EnsureLogitRows(std::max(1, std::min(options.max_num_batched_tokens, 256))));
  ASSIGN_OR_RETURN(attention_, AttentionLayers<T>::Create(config_, options));
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::Embed(int64_t tokens) {
  const int64_t h = Hidden();
  kc::EmbeddingTables<T> tables;
  tables.tokens = w_.embed_tokens.ptr<T>();
  tables.vocab = w_.embed_tokens.rows;
  tables.scale = config_.embedding_scale;
  if (!w_.position_table.empty()) {
    tables.positions = w_.position_table.ptr<T>();
    tables.position_rows = w_.position_table.rows;
    tables.position_offset = config_.position.absolute.offset;
  }
  T* x = Ptr(a_.hidden);
  if (w_.project_in.empty()) {
    RETURN_IF_ERROR(kc::EmbedTokens(tables, inputs_.token_ids(), inputs_.positions(), tokens, h, x,
                                    h, stream_));
  } else {
    // OPT: look up, project to the hidden width, then scale and add positions.
    const int64_t e = w_.embed_tokens.cols;
    kc::EmbeddingTables<T> lookup = tables;
    lookup.scale = 1.0f;
    lookup.positions = nullptr;
    RETURN_IF_ERROR(kc::EmbedTokens(lookup, inputs_.token_ids(), nullptr, tokens, e,
                                    Ptr(a_.embedded), e, stream_));
    RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, Ptr(a_.embedded), e, w_.project_in.ptr<T>(), e, x,
                                          h, tokens, h, e));
    if (tables.scale != 1.0f || tables.positions != nullptr) {
      RETURN_IF_ERROR(
          kc::ScaleAndAddPositions(tables, inputs_.positions(), tokens, h, x, h, stream_));
    }
  }
  if (config_.embedding_norm) {
    RETURN_IF_ERROR(kc::Norm(w_.embed_norm.Params<T>(config_), x, h, x, h, tokens, h, stream_));
  }
  return absl::OkStatus();
}

// x += down(act(up(in))): SwiGLU over [gate; up] when gated, else one activation.
template <typename T>
absl::Status CudaDecoderImpl<T>::Mlp(const DeviceLayer& layer, const T* in, int64_t tokens) {
  const int64_t h = Hidden();
  const int64_t up_rows = layer.up.rows;
  const int64_t inter = layer.down.cols;
  T* up = Ptr(a_.up);
  RETURN_IF_ERROR(
      kc::MatMulTransposedB(blas_, in, h, layer.up.ptr<T>(), h, up, up_rows, tokens, up_rows, h));
  const T* activated = up;
  if (config_.gated_mlp) {
    RETURN_IF_ERROR(kc::SiluGateMul(up, up_rows, OrNull<T>(layer.up_bias), Ptr(a_.activation),
                                    inter, tokens, inter, stream_));
    activated = Ptr(a_.activation);
  } else {
    RETURN_IF_ERROR(kc::AddBiasAndActivate(config_.activation, up, up_rows,
                                           OrNull<T>(layer.up_bias), tokens, inter, stream_));
  }
  T* x = Ptr(a_.hidden);
  RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, activated, inter, layer.down.ptr<T>(), inter, x, h,
                                        tokens, h, inter, /*accumulate=*/true));
  if (layer.down_bias.bytes() != 0) {
    RETURN_IF_ERROR(kc::AddBias(x, h, OrNull<T>(layer.down_bias), tokens, h, stream_));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::RunLayer(int index, int64_t tokens) {
  const DeviceLayer& layer = w_.layers[index];
  const int64_t h = Hidden();
  T* x = Ptr(a_.hidden);
  T* normed = Ptr(a_.normed);
  RETURN_IF_ERROR(
      kc::Norm(layer.attn_norm.Params<T>(config_), x, h, normed, h, tokens, h, stream_));
  if (config_.residual == ResidualLayout::kParallelTwoNorms) {
    RETURN_IF_ERROR(kc::Norm(layer.mlp_norm.Params<T>(config_), x, h, Ptr(a_.mlp_normed), h, tokens,
                             h, stream_));
  }
  // qkv projection (+ bias, MPT's clamp), then attention over the paged cache.
  T* qkv = Ptr(a_.qkv);
  const int64_t qkv_width = QkvWidth();
  RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, normed, h, layer.qkv.ptr<T>(), h, qkv, qkv_width,
                                        tokens, qkv_width, h));
  if (config_.clip_qkv > 0) {
    RETURN_IF_ERROR(kc::AddBiasAndClamp(qkv, qkv_width, OrNull<T>(layer.qkv_bias), config_.clip_qkv,
                                        tokens, qkv_width, stream_));
  } else if (layer.qkv_bias.bytes() != 0) {
    RETURN_IF_ERROR(
        kc::AddBias(qkv, qkv_width, OrNull<T>(layer.qkv_bias), tokens, qkv_width, stream_));
  }
  RETURN_IF_ERROR(
      attention_->Run(index, qkv, qkv_width, inputs_, Ptr(a_.attention), QWidth(), stream_));
  RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, Ptr(a_.attention), QWidth(), layer.o_proj.ptr<T>(),
                                        QWidth(), x, h, tokens, h, QWidth(), /*accumulate=*/true));
  if (layer.o_bias.bytes() != 0) {
    RETURN_IF_ERROR(kc::AddBias(x, h, OrNull<T>(layer.o_bias), tokens, h, stream_));
  }
  switch (config_.residual) {
    case ResidualLayout::kSequential:
      RETURN_IF_ERROR(
          kc::Norm(layer.mlp_norm.Params<T>(config_), x, h, normed, h, tokens, h, stream_));
      return Mlp(layer, normed, tokens);
    case ResidualLayout::kParallelSharedNorm:  // the MLP reads the same normed input
      return Mlp(layer, normed, tokens);
    case ResidualLayout::kParallelTwoNorms: return Mlp(layer, Ptr(a_.mlp_normed), tokens);
    case ResidualLayout::kPostNorm:
    case ResidualLayout::kNormedResidual: break;  // refused by MakeCudaDecoder
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::Head(int64_t rows, std::vector<float>* logits) {
  const int64_t h = Hidden();
  RETURN_IF_ERROR(EnsureLogitRows(rows));
  T* features = Ptr(a_.final_rows);
  if (config_.final_norm) {
    RETURN_IF_ERROR(kc::GatherAndNorm(w_.final_norm.Params<T>(config_), Ptr(a_.hidden), h,
                                      a_.capacity, inputs_.logits_rows(), rows, features, h, h,
                                      stream_));
  } else {
    RETURN_IF_ERROR(kc::GatherRows(Ptr(a_.hidden), h, a_.capacity, inputs_.logits_rows(), rows,
                                   features, h, h, stream_));
  }
  int64_t width = h;
  if (!w_.project_out.empty()) {
    width = w_.project_out.rows;
    RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, features, h, w_.project_out.ptr<T>(), h,
                                          Ptr(a_.projected), width, rows, width, h));
    features = Ptr(a_.projected);
  }
  const DeviceMatrix& head = w_.lm_head.empty() ? w_.embed_tokens : w_.lm_head;
  const int64_t vocab = config_.vocab_size;
  float* out = a_.logits.get<float>();
  RETURN_IF_ERROR(kc::MatMulTransposedB(blas_, features, width, head.ptr<T>(), width, out, vocab,
                                        rows, vocab, width));
  if (w_.lm_head_bias.bytes() != 0) {
    RETURN_IF_ERROR(
        kc::AddBiasToLogits(out, vocab, OrNull<T>(w_.lm_head_bias), rows, vocab, stream_));
  }
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits->data(), out, rows * vocab * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_));
  return absl::OkStatus();
}

template <typename T>
absl::Status CudaDecoderImpl<T>::Forward(const StepPlan& plan, std::vector<float>* logits) {
  const int64_t tokens = plan.num_tokens();
  const int64_t rows = static_cast<int64_t>(plan.logits_rows.size());
  logits->resize(rows * config_.vocab_size);
  if (tokens == 0) return absl::OkStatus();
  RETURN_IF_ERROR(EnsureActivations(tokens));
  RETURN_IF_ERROR(inputs_.Upload(plan, stream_));
  RETURN_IF_ERROR(attention_->Prepare(plan, stream_));
  RETURN_IF_ERROR(Embed(tokens));
  for (int i = 0; i < config_.num_layers; ++i) RETURN_IF_ERROR(RunLayer(i, tokens));
  if (rows > 0) RETURN_IF_ERROR(Head(rows, logits));
  // The logits copy lands in pageable memory, and the plan's staging buffer is reused next step.
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

// The smallest head dim with attention kernels that holds `head_dim` (0: none does).
int PaddedHeadDim(int head_dim) {
  for (int d : kc::kAttentionHeadDims) {
    if (d >= head_dim) return d;
  }
  return 0;
}

template <typename T>
absl::StatusOr<std::unique_ptr<CudaDecoder>> Make(ModelConfig config, const DecoderWeights& weights,
                                                  const CudaDecoderOptions& options) {
  HeadLayout heads{config.num_heads, config.num_kv_heads, config.head_dim,
                   PaddedHeadDim(config.head_dim)};
  if (heads.padded_head_dim == 0) {
    return absl::InvalidArgumentError(absl::StrCat(config.source, ": head_dim ", config.head_dim,
                                                   " is larger than any CUDA attention kernel"));
  }
  if (heads.padded()) {
    // The device runs the padded layout; the scores keep the model's own scale.
    if (config.softmax_scale <= 0) config.softmax_scale = 1.0f / std::sqrt(float(config.head_dim));
    config.head_dim = heads.padded_head_dim;
  }
  cudaStream_t stream = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto blas = kc::BlasHandle::Create(stream);
  if (!blas.ok()) {
    cudaStreamDestroy(stream);
    return blas.status();
  }
  auto decoder = std::make_unique<CudaDecoderImpl<T>>(config, stream, std::move(*blas));
  RETURN_IF_ERROR(decoder->Init(weights, heads, options));
  return std::unique_ptr<CudaDecoder>(std::move(decoder));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaDecoder>> MakeCudaDecoder(const ModelConfig& config,
                                                             const DecoderWeights& weights,
                                                             const std::string& dtype,
                                                             const CudaDecoderOptions& options) {
  if (weights.layers.empty())
    return absl::InvalidArgumentError("a decoder needs at least one layer");
  if (config.residual == ResidualLayout::kPostNorm ||
      config.residual == ResidualLayout::kNormedResidual) {
    return absl::UnimplementedError(absl::StrCat(
        config.source,
        ": post-norm residual layouts (OPT's do_layer_norm_before: false, BLOOM's "
        "apply_residual_connection_post_layernorm) run on the CPU only (--device cpu)"));
  }
  if (dtype == "bf16") return Make<__nv_bfloat16>(config, weights, options);
  if (dtype == "fp16") return Make<__half>(config, weights, options);
  return absl::InvalidArgumentError(absl::StrCat("dtype must be bf16 or fp16, got ", dtype));
}

}  // namespace ropewire::model::cuda
