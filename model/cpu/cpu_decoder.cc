#include "model/cpu/cpu_decoder.h"

#include <cmath>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cpu/weight_gemm.h"

namespace ropewire::model::cpu {

namespace ck = kernels::cpu;

namespace {

// out[r] = table row ids[r], widened to f32 whatever the table's format.
void GatherRows(const Weight& table, const int32_t* ids, int64_t n, float* out, int64_t stride) {
  if (table.format() == kernels::WeightFormat::kF32) {
    ck::EmbeddingLookup(table.f32(), table.cols(), ids, n, out, stride);
    return;
  }
  for (int64_t r = 0; r < n; ++r) {
    kernels::DequantizeRow(table.format(), table.Row(ids[r]), table.cols(), out + r * stride);
  }
}

}  // namespace

CpuDecoder::CpuDecoder(ModelConfig config, DecoderWeights weights)
    : config_(std::move(config)), w_(std::move(weights)) {
  for (int i = 0; i < config_.num_layers; ++i) {
    const kernels::PositionEncoding& pe = LayerPosition(i);
    if (pe.kind != kernels::PositionKind::kRope) {
      rope_sets_.push_back(nullptr);
    } else if (i > 0 && config_.position_by_layer.empty()) {
      rope_sets_.push_back(rope_sets_.front());  // one shared set when every layer agrees
    } else {
      rope_sets_.push_back(std::make_shared<kernels::RopeTableSet>(pe.rope));
    }
  }
}

const kernels::PositionEncoding& CpuDecoder::LayerPosition(int layer) const {
  return config_.position_by_layer.empty() ? config_.position : config_.position_by_layer[layer];
}

void CpuDecoder::Resize(int64_t tokens) {
  const int64_t h = config_.hidden_size;
  ws_.hidden.resize(tokens * h);
  ws_.normed.resize(tokens * h);
  if (config_.residual == ResidualLayout::kParallelTwoNorms) ws_.mlp_normed.resize(tokens * h);
  ws_.qkv.resize(tokens * (QWidth() + 2 * KvWidth()));
  ws_.attention.resize(tokens * QWidth());
  ws_.up.resize(tokens * w_.layers.front().up.rows());
  if (config_.gated_mlp) ws_.activation.resize(tokens * config_.intermediate_size);
  if (!w_.project_in.empty()) ws_.embedded.resize(tokens * w_.embed_tokens.cols());
}

void CpuDecoder::Norm(const NormWeights& norm, const float* x, float* out, int64_t rows) const {
  const int64_t h = config_.hidden_size;
  if (config_.norm == NormKind::kRmsNorm) {
    ck::RmsNorm(x, h, norm.weight.data(), config_.norm_eps, out, h, rows, h);
  } else {
    ck::LayerNorm(x, h, norm.weight.data(), norm.bias.empty() ? nullptr : norm.bias.data(),
                  config_.norm_eps, out, h, rows, h);
  }
}

void CpuDecoder::Embed(const StepPlan& plan, int64_t tokens) {
  const int64_t h = config_.hidden_size;
  const int64_t e = w_.embed_tokens.cols();
  float* x = ws_.hidden.data();
  if (w_.project_in.empty()) {
    GatherRows(w_.embed_tokens, plan.token_ids.data(), tokens, x, h);
  } else {
    GatherRows(w_.embed_tokens, plan.token_ids.data(), tokens, ws_.embedded.data(), e);
    ck::MatMulWeight(ws_.embedded.data(), e, w_.project_in.view(), x, h, tokens);
  }
  if (config_.embedding_scale != 1.0f) ck::ScaleInPlace(x, h, tokens, h, config_.embedding_scale);
  if (!w_.position_table.empty()) {
    // Rows of the absolute table: position + the table's offset (CheckStepPlan bounds positions).
    std::vector<int32_t> rows(plan.positions);
    for (int32_t& r : rows) r += config_.position.absolute.offset;
    ck::AddTableRows(w_.position_table.f32(), h, rows.data(), tokens, x, h);
  }
  if (config_.embedding_norm) Norm(w_.embed_norm, x, x, tokens);
}

void CpuDecoder::Attend(int index, const float* in, const StepPlan& plan, CpuKvCache& cache,
                        int64_t tokens) {
  const ModelConfig& c = config_;
  const DecoderLayerWeights& layer = w_.layers[index];
  const int64_t h = c.hidden_size;
  const int64_t qkv_width = QWidth() + 2 * KvWidth();
  ck::MatMulWeight(in, h, layer.qkv.view(), ws_.qkv.data(), qkv_width, tokens);
  if (!layer.qkv_bias.empty()) {
    ck::AddBias(ws_.qkv.data(), qkv_width, layer.qkv_bias.data(), tokens, qkv_width);
  }
  if (c.clip_qkv > 0) ck::ClampInPlace(ws_.qkv.data(), qkv_width, tokens, qkv_width, c.clip_qkv);

  const float* q = ws_.qkv.data();
  const float* k = q + QWidth();
  const float* v = k + KvWidth();
  ck::WriteKv(k, qkv_width, v, qkv_width, plan.slots.data(), tokens, cache.geometry(),
              cache.Layer(index));
  ck::AttentionParams params;
  params.num_heads = c.num_heads;
  params.num_kv_heads = c.num_kv_heads;
  params.head_dim = c.head_dim;
  params.softmax_scale =
      c.softmax_scale > 0 ? c.softmax_scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.scale_attn_by_inverse_layer_idx) params.softmax_scale /= static_cast<float>(index + 1);
  params.sliding_window = c.sliding_window.empty() ? 0 : c.sliding_window[index];
  params.position = &LayerPosition(index);
  if (rope_sets_[index]) params.seq_rope_tables = rope_sets_[index]->per_sequence();
  ck::PagedAttention(q, qkv_width, cache.ConstLayer(index), cache.geometry(), plan.BatchView(),
                     params, ws_.attention.data(), QWidth());
  ck::MatMulWeight(ws_.attention.data(), QWidth(), layer.o_proj.view(), ws_.hidden.data(), h,
                   tokens, /*accumulate=*/true);
  if (!layer.o_bias.empty()) ck::AddBias(ws_.hidden.data(), h, layer.o_bias.data(), tokens, h);
}

// x += down(act(up(in))): SwiGLU over [gate; up] when gated, else one activation.
void CpuDecoder::Mlp(const DecoderLayerWeights& layer, const float* in, int64_t tokens) {
  const int64_t h = config_.hidden_size;
  const int64_t up_rows = layer.up.rows();
  const int64_t inter = layer.down.cols();
  float* x = ws_.hidden.data();
  ck::MatMulWeight(in, h, layer.up.view(), ws_.up.data(), up_rows, tokens);
  if (!layer.up_bias.empty())
    ck::AddBias(ws_.up.data(), up_rows, layer.up_bias.data(), tokens, up_rows);
  const float* activated = ws_.up.data();
  if (config_.gated_mlp) {
    ck::SiluGateMul(ws_.up.data(), up_rows, ws_.activation.data(), inter, tokens, inter);
    activated = ws_.activation.data();
  } else {
    ck::ApplyActivation(config_.activation, ws_.up.data(), up_rows, tokens, inter);
  }
  ck::MatMulWeight(activated, inter, layer.down.view(), x, h, tokens, /*accumulate=*/true);
  if (!layer.down_bias.empty()) ck::AddBias(x, h, layer.down_bias.data(), tokens, h);
}

void CpuDecoder::RunLayer(int index, const StepPlan& plan, CpuKvCache& cache, int64_t tokens) {
  const DecoderLayerWeights& layer = w_.layers[index];
  float* x = ws_.hidden.data();
  float* normed = ws_.normed.data();
  switch (config_.residual) {
    case ResidualLayout::kSequential:
      Norm(layer.attn_norm, x, normed, tokens);
      Attend(index, normed, plan, cache, tokens);
      Norm(layer.mlp_norm, x, normed, tokens);
      Mlp(layer, normed, tokens);
      break;
    case ResidualLayout::kParallelSharedNorm:  // the MLP reads the same normed input
      Norm(layer.attn_norm, x, normed, tokens);
      Attend(index, normed, plan, cache, tokens);
      Mlp(layer, normed, tokens);
      break;
    case ResidualLayout::kParallelTwoNorms:
      Norm(layer.attn_norm, x, normed, tokens);
      Norm(layer.mlp_norm, x, ws_.mlp_normed.data(), tokens);
      Attend(index, normed, plan, cache, tokens);
      Mlp(layer, ws_.mlp_normed.data(), tokens);
      break;
    case ResidualLayout::kPostNorm:
      Attend(index, x, plan, cache, tokens);
      Norm(layer.attn_norm, x, x, tokens);
      Mlp(layer, x, tokens);
      Norm(layer.mlp_norm, x, x, tokens);
      break;
    case ResidualLayout::kNormedResidual:
      // The normed values replace the stream, then each block adds to them.
      Norm(layer.attn_norm, x, x, tokens);
      Attend(index, x, plan, cache, tokens);
      Norm(layer.mlp_norm, x, x, tokens);
      Mlp(layer, x, tokens);
      break;
  }
}

void CpuDecoder::Head(const StepPlan& plan, float* logits) {
  const int64_t h = config_.hidden_size;
  const int64_t rows = static_cast<int64_t>(plan.logits_rows.size());
  ws_.final_rows.resize(rows * h);
  ck::GatherRows(ws_.hidden.data(), h, plan.logits_rows.data(), rows, ws_.final_rows.data(), h, h);
  if (config_.final_norm) Norm(w_.final_norm, ws_.final_rows.data(), ws_.final_rows.data(), rows);
  const float* features = ws_.final_rows.data();
  int64_t width = h;
  if (!w_.project_out.empty()) {
    width = w_.project_out.rows();
    ws_.projected.resize(rows * width);
    ck::MatMulWeight(features, h, w_.project_out.view(), ws_.projected.data(), width, rows);
    features = ws_.projected.data();
  }
  const Weight& head = w_.lm_head.empty() ? w_.embed_tokens : w_.lm_head;
  const int64_t vocab = config_.vocab_size;
  ck::MatMulWeight(features, width, head.view(), logits, vocab, rows);
  if (!w_.lm_head_bias.empty()) ck::AddBias(logits, vocab, w_.lm_head_bias.data(), rows, vocab);
}

void CpuDecoder::Forward(const StepPlan& plan, CpuKvCache& cache, float* logits) {
  const int64_t tokens = plan.num_tokens();
  Resize(tokens);
  const kernels::RaggedBatchView batch = plan.BatchView();
  for (int i = 0; i < config_.num_layers; ++i) {
    if (rope_sets_[i] && (i == 0 || rope_sets_[i] != rope_sets_[i - 1])) {
      rope_sets_[i]->Prepare(batch);
    }
  }
  Embed(plan, tokens);
  for (int i = 0; i < config_.num_layers; ++i) RunLayer(i, plan, cache, tokens);
  if (!plan.logits_rows.empty()) Head(plan, logits);
}

}  // namespace ropewire::model::cpu
