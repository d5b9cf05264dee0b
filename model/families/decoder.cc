#include "model/families/decoder.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/rope_table.h"
#include "model/families/families.h"
#include "model/step_context.h"

namespace ropewire::model {
namespace {

namespace cpu = kernels::cpu;

// Scratch buffers sized for the largest step seen so far.
struct Workspace {
  std::vector<float> hidden, normed, mlp_normed, qkv, attention, up, activation, embedded,
      final_rows, projected;
};

class DecoderModel : public CausalLm {
 public:
  DecoderModel(ModelConfig config, DecoderWeights weights)
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

  const ModelConfig& config() const override { return config_; }
  absl::Status Forward(const StepPlan& plan, KvCache& cache, float* logits) override;
  const DecoderWeights& weights() const { return w_; }

 private:
  const kernels::PositionEncoding& LayerPosition(int layer) const {
    return config_.position_by_layer.empty() ? config_.position : config_.position_by_layer[layer];
  }
  int64_t QWidth() const { return int64_t(config_.num_heads) * config_.head_dim; }
  int64_t KvWidth() const { return int64_t(config_.num_kv_heads) * config_.head_dim; }
  int64_t UpRows() const { return w_.layers.front().up.rows; }

  void Resize(int64_t tokens);
  void Norm(const NormWeights& norm, const float* x, float* out, int64_t rows) const;
  void Embed(const StepPlan& plan, int64_t tokens);
  void Attend(int index, KvCache& cache, int64_t tokens);
  void Mlp(const DecoderLayerWeights& layer, const float* in, int64_t tokens);
  void RunLayer(int index, KvCache& cache, int64_t tokens);
  void Head(const StepPlan& plan, float* logits);

  ModelConfig config_;
  DecoderWeights w_;
  std::vector<std::shared_ptr<kernels::RopeTableSet>> rope_sets_;  // per layer; null: no RoPE
  Workspace ws_;
  StepContext step_;
};

void DecoderModel::Resize(int64_t tokens) {
  const int64_t h = config_.hidden_size;
  ws_.hidden.resize(tokens * h);
  ws_.normed.resize(tokens * h);
  if (config_.residual == ResidualLayout::kParallelTwoNorms) ws_.mlp_normed.resize(tokens * h);
  ws_.qkv.resize(tokens * (QWidth() + 2 * KvWidth()));
  ws_.attention.resize(tokens * QWidth());
  ws_.up.resize(tokens * UpRows());
  if (config_.gated_mlp) ws_.activation.resize(tokens * config_.intermediate_size);
  if (!w_.project_in.data.empty()) ws_.embedded.resize(tokens * w_.embed_tokens.cols);
}

void DecoderModel::Norm(const NormWeights& norm, const float* x, float* out, int64_t rows) const {
  const int64_t h = config_.hidden_size;
  if (config_.norm == NormKind::kRmsNorm) {
    cpu::RmsNorm(x, h, norm.weight.data(), config_.norm_eps, out, h, rows, h);
  } else {
    cpu::LayerNorm(x, h, norm.weight.data(), norm.bias.empty() ? nullptr : norm.bias.data(),
                   config_.norm_eps, out, h, rows, h);
  }
}

void DecoderModel::Embed(const StepPlan& plan, int64_t tokens) {
  const int64_t h = config_.hidden_size;
  const int64_t e = w_.embed_tokens.cols;
  float* x = ws_.hidden.data();
  if (w_.project_in.data.empty()) {
    cpu::EmbeddingLookup(w_.embed_tokens.ptr(), e, plan.token_ids.data(), tokens, x, h);
  } else {
    cpu::EmbeddingLookup(w_.embed_tokens.ptr(), e, plan.token_ids.data(), tokens,
                         ws_.embedded.data(), e);
    cpu::MatMulTransposedB(ws_.embedded.data(), e, w_.project_in.ptr(), e, x, h, tokens, h, e);
  }
  if (config_.embedding_scale != 1.0f) cpu::ScaleInPlace(x, h, tokens, h, config_.embedding_scale);
  if (!w_.position_table.data.empty()) {
    // Rows of the absolute table: position + the table's offset (ModelRunner bounds positions).
    std::vector<int32_t> rows(plan.positions);
    for (int32_t& r : rows) r += config_.position.absolute.offset;
    cpu::AddTableRows(w_.position_table.ptr(), h, rows.data(), tokens, x, h);
  }
  if (config_.embedding_norm) Norm(w_.embed_norm, x, x, tokens);
}

void DecoderModel::Attend(int index, KvCache& cache, int64_t tokens) {
  const ModelConfig& c = config_;
  const DecoderLayerWeights& layer = w_.layers[index];
  const int64_t h = c.hidden_size;
  const int64_t qkv_width = QWidth() + 2 * KvWidth();
  cpu::MatMulTransposedB(ws_.normed.data(), h, layer.qkv.ptr(), h, ws_.qkv.data(), qkv_width,
                         tokens, qkv_width, h);
  if (!layer.qkv_bias.empty()) {
    cpu::AddBias(ws_.qkv.data(), qkv_width, layer.qkv_bias.data(), tokens, qkv_width);
  }
  if (c.clip_qkv > 0) cpu::ClampInPlace(ws_.qkv.data(), qkv_width, tokens, qkv_width, c.clip_qkv);

  const float* q = ws_.qkv.data();
  const float* k = q + QWidth();
  const float* v = k + KvWidth();
  cpu::WriteKv(k, qkv_width, v, qkv_width, step_.slots.data(), tokens, cache.geometry(),
               cache.Layer(index));
  cpu::AttentionParams params;
  params.num_heads = c.num_heads;
  params.num_kv_heads = c.num_kv_heads;
  params.head_dim = c.head_dim;
  params.softmax_scale = c.softmax_scale > 0 ? c.softmax_scale
                                             : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.scale_attn_by_inverse_layer_idx) params.softmax_scale /= static_cast<float>(index + 1);
  params.sliding_window = c.sliding_window.empty() ? 0 : c.sliding_window[index];
  params.position = &LayerPosition(index);
  if (rope_sets_[index]) params.seq_rope_tables = rope_sets_[index]->per_sequence();
  cpu::PagedAttention(q, qkv_width, cache.ConstLayer(index), cache.geometry(), step_.batch, params,
                      ws_.attention.data(), QWidth());
}

// x += down(act(up(in))): SwiGLU over [gate; up] when gated, else one activation.
void DecoderModel::Mlp(const DecoderLayerWeights& layer, const float* in, int64_t tokens) {
  const int64_t h = config_.hidden_size;
  const int64_t up_rows = layer.up.rows;
  const int64_t inter = layer.down.cols;
  float* x = ws_.hidden.data();
  cpu::MatMulTransposedB(in, h, layer.up.ptr(), h, ws_.up.data(), up_rows, tokens, up_rows, h);
  if (!layer.up_bias.empty()) cpu::AddBias(ws_.up.data(), up_rows, layer.up_bias.data(), tokens, up_rows);
  const float* activated = ws_.up.data();
  if (config_.gated_mlp) {
    cpu::SiluGateMul(ws_.up.data(), up_rows, ws_.activation.data(), inter, tokens, inter);
    activated = ws_.activation.data();
  } else {
    cpu::ApplyActivation(KernelActivation(config_.activation), ws_.up.data(), up_rows, tokens, inter);
  }
  cpu::MatMulTransposedB(activated, inter, layer.down.ptr(), inter, x, h, tokens, h, inter,
                         /*accumulate=*/true);
  if (!layer.down_bias.empty()) cpu::AddBias(x, h, layer.down_bias.data(), tokens, h);
}

void DecoderModel::RunLayer(int index, KvCache& cache, int64_t tokens) {
  const DecoderLayerWeights& layer = w_.layers[index];
  const int64_t h = config_.hidden_size;
  float* x = ws_.hidden.data();
  Norm(layer.attn_norm, x, ws_.normed.data(), tokens);
  if (config_.residual == ResidualLayout::kParallelTwoNorms) {
    Norm(layer.mlp_norm, x, ws_.mlp_normed.data(), tokens);
  }
  Attend(index, cache, tokens);
  cpu::MatMulTransposedB(ws_.attention.data(), QWidth(), layer.o_proj.ptr(), QWidth(), x, h,
                         tokens, h, QWidth(), /*accumulate=*/true);
  if (!layer.o_bias.empty()) cpu::AddBias(x, h, layer.o_bias.data(), tokens, h);
  switch (config_.residual) {
    case ResidualLayout::kSequential:
      Norm(layer.mlp_norm, x, ws_.normed.data(), tokens);
      Mlp(layer, ws_.normed.data(), tokens);
      break;
    case ResidualLayout::kParallelSharedNorm:  // the MLP reads the same normed input
      Mlp(layer, ws_.normed.data(), tokens);
      break;
    case ResidualLayout::kParallelTwoNorms:
      Mlp(layer, ws_.mlp_normed.data(), tokens);
      break;
  }
}

void DecoderModel::Head(const StepPlan& plan, float* logits) {
  const int64_t h = config_.hidden_size;
  const int64_t rows = static_cast<int64_t>(plan.logits_rows.size());
  ws_.final_rows.resize(rows * h);
  cpu::GatherRows(ws_.hidden.data(), h, plan.logits_rows.data(), rows, ws_.final_rows.data(), h, h);
  if (config_.final_norm) Norm(w_.final_norm, ws_.final_rows.data(), ws_.final_rows.data(), rows);
  const float* features = ws_.final_rows.data();
  int64_t width = h;
  if (!w_.project_out.data.empty()) {
    width = w_.project_out.rows;
    ws_.projected.resize(rows * width);
    cpu::MatMulTransposedB(features, h, w_.project_out.ptr(), h, ws_.projected.data(), width, rows,
                           width, h);
    features = ws_.projected.data();
  }
  const float* head = w_.lm_head.data.empty() ? w_.embed_tokens.ptr() : w_.lm_head.ptr();
  const int64_t vocab = config_.vocab_size;
  cpu::MatMulTransposedB(features, width, head, width, logits, vocab, rows, vocab, width);
  if (!w_.lm_head_bias.empty()) cpu::AddBias(logits, vocab, w_.lm_head_bias.data(), rows, vocab);
}

absl::Status DecoderModel::Forward(const StepPlan& plan, KvCache& cache, float* logits) {
  const int64_t tokens = plan.num_tokens();
  Resize(tokens);
  step_.Prepare(plan, cache.geometry().block_size, nullptr);
  for (int i = 0; i < config_.num_layers; ++i) {
    if (rope_sets_[i] && (i == 0 || rope_sets_[i] != rope_sets_[i - 1])) {
      rope_sets_[i]->Prepare(step_.batch);
    }
  }
  Embed(plan, tokens);
  for (int i = 0; i < config_.num_layers; ++i) RunLayer(i, cache, tokens);
  if (!plan.logits_rows.empty()) Head(plan, logits);
  return absl::OkStatus();
}

int64_t RowBlockIndex(FusedQkvLayout layout, int part, int head, int num_heads, int num_kv_heads) {
  // part 0: query head `head`; 1, 2: key / value of kv head `head`.
  const int group = num_heads / num_kv_heads;
  switch (layout) {
    case FusedQkvLayout::kStacked:
      return part == 0 ? head : part == 1 ? num_heads + head : num_heads + num_kv_heads + head;
    case FusedQkvLayout::kPerHead:
      return int64_t(head) * 3 + part;
    case FusedQkvLayout::kGrouped: {
      const int g = part == 0 ? head / group : head;
      const int within = part == 0 ? head % group : group + part - 1;
      return int64_t(g) * (group + 2) + within;
    }
  }
  return 0;
}

}  // namespace

void DeinterleaveQkv(FusedQkvLayout layout, int num_heads, int num_kv_heads, int head_dim,
                     Matrix* weight, std::vector<float>* bias) {
  if (layout == FusedQkvLayout::kStacked) return;
  const int64_t cols = weight->cols;
  WeightVector rows(weight->data.size());
  std::vector<float> bias_rows(bias->size());
  int64_t dst_block = 0;
  for (int part = 0; part < 3; ++part) {
    const int heads = part == 0 ? num_heads : num_kv_heads;
    for (int head = 0; head < heads; ++head, ++dst_block) {
      const int64_t src_block = RowBlockIndex(layout, part, head, num_heads, num_kv_heads);
      std::copy_n(weight->data.begin() + src_block * head_dim * cols, head_dim * cols,
                  rows.begin() + dst_block * head_dim * cols);
      if (!bias->empty()) {
        std::copy_n(bias->begin() + src_block * head_dim, head_dim,
                    bias_rows.begin() + dst_block * head_dim);
      }
    }
  }
  weight->data = std::move(rows);
  *bias = std::move(bias_rows);
}

absl::StatusOr<NormWeights> LoadNorm(const WeightLoader& loader, const std::string& prefix,
                                     int64_t n, bool with_bias) {
  NormWeights norm;
  ASSIGN_OR_RETURN(norm.weight, loader.LoadVector(prefix + ".weight", n));
  if (with_bias) {
    ASSIGN_OR_RETURN(norm.bias, loader.LoadVector(prefix + ".bias", n));
  }
  return norm;
}

absl::StatusOr<Matrix> LoadTransposed(const WeightLoader& loader, const std::string& name,
                                      int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(Matrix stored, loader.Load(name, cols, rows));
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) m.data[r * cols + c] = stored.data[c * rows + r];
  }
  return m;
}

absl::StatusOr<Matrix> LoadLinear(const WeightLoader& loader, const std::string& name,
                                  int64_t rows, int64_t cols, bool with_bias,
                                  std::vector<float>* bias) {
  ASSIGN_OR_RETURN(Matrix m, loader.Load(name + ".weight", rows, cols));
  if (with_bias) {
    ASSIGN_OR_RETURN(*bias, loader.LoadVector(name + ".bias", rows));
  }
  return m;
}

absl::StatusOr<DecoderLayerWeights> LoadLayer(const ModelConfig& c, const WeightLoader& loader,
                                              const LayerNames& names) {
  DecoderLayerWeights layer;
  const int64_t h = c.hidden_size;
  const int64_t q_rows = int64_t(c.num_heads) * c.head_dim;
  const int64_t kv_rows = int64_t(c.num_kv_heads) * c.head_dim;
  ASSIGN_OR_RETURN(layer.attn_norm, LoadNorm(loader, names.attn_norm, h, c.norm_bias));
  if (!names.mlp_norm.empty()) {
    ASSIGN_OR_RETURN(layer.mlp_norm, LoadNorm(loader, names.mlp_norm, h, c.norm_bias));
  }
  if (!names.qkv.empty()) {
    ASSIGN_OR_RETURN(layer.qkv, LoadLinear(loader, names.qkv, q_rows + 2 * kv_rows, h, c.qkv_bias,
                                           &layer.qkv_bias));
    DeinterleaveQkv(names.qkv_layout, c.num_heads, c.num_kv_heads, c.head_dim, &layer.qkv,
                    &layer.qkv_bias);
  } else {
    ASSIGN_OR_RETURN(layer.qkv, loader.LoadStacked({names.q + ".weight", names.k + ".weight",
                                                    names.v + ".weight"},
                                                   {q_rows, kv_rows, kv_rows}, h));
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(layer.qkv_bias,
                       loader.LoadConcatenated({names.q + ".bias", names.k + ".bias", names.v + ".bias"},
                                               {q_rows, kv_rows, kv_rows}));
    }
  }
  ASSIGN_OR_RETURN(layer.o_proj, LoadLinear(loader, names.o, h, q_rows, c.o_bias, &layer.o_bias));
  ASSIGN_OR_RETURN(layer.up, LoadLinear(loader, names.up, c.intermediate_size, h, c.mlp_bias,
                                        &layer.up_bias));
  ASSIGN_OR_RETURN(layer.down, LoadLinear(loader, names.down, h, c.intermediate_size, c.mlp_bias,
                                          &layer.down_bias));
  return layer;
}

absl::Status LoadHead(const ModelConfig& c, const WeightLoader& loader,
                      const std::string& final_norm, const std::string& lm_head,
                      DecoderWeights* w) {
  if (c.final_norm) {
    ASSIGN_OR_RETURN(w->final_norm, LoadNorm(loader, final_norm, c.hidden_size, c.norm_bias));
  }
  const int64_t width = w->embed_tokens.cols;
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(w->lm_head, loader.Load(lm_head + ".weight", c.vocab_size, width));
  }
  if (c.lm_head_bias) {
    ASSIGN_OR_RETURN(w->lm_head_bias, loader.LoadVector(lm_head + ".bias", c.vocab_size));
  }
  return absl::OkStatus();
}

absl::Status ParseBasicDimensions(const JsonReader& json, const std::vector<std::string>& hidden,
                                  const std::vector<std::string>& layers,
                                  const std::vector<std::string>& heads, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->vocab_size, json.PositiveInt("vocab_size"));
  ASSIGN_OR_RETURN(c->hidden_size, json.PositiveInt(FirstPresentKey(json, hidden)));
  ASSIGN_OR_RETURN(int64_t num_layers, json.PositiveInt(FirstPresentKey(json, layers)));
  const std::string heads_key = FirstPresentKey(json, heads);
  ASSIGN_OR_RETURN(int64_t num_heads, json.PositiveInt(heads_key));
  if (c->hidden_size % num_heads != 0) return json.Error(heads_key, "must divide the hidden size");
  c->num_layers = static_cast<int>(num_layers);
  c->num_heads = c->num_kv_heads = static_cast<int>(num_heads);
  c->head_dim = static_cast<int>(c->hidden_size / num_heads);
  return absl::OkStatus();
}

std::string FirstPresentKey(const JsonReader& json, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (json.Has(key)) return key;
  }
  return keys.back();
}

absl::StatusOr<std::unique_ptr<CausalLm>> MakeDecoder(const ModelConfig& config,
                                                      DecoderWeights weights) {
  if (static_cast<int>(weights.layers.size()) != config.num_layers) {
    return absl::InternalError("decoder weights do not have one entry per layer");
  }
  if (config.gated_mlp && config.activation != Activation::kSilu) {
    return absl::InvalidArgumentError(absl::StrCat(config.source, ": a gated MLP needs silu"));
  }
  return std::unique_ptr<CausalLm>(new DecoderModel(config, std::move(weights)));
}

kernels::cpu::ActivationKind KernelActivation(Activation a) {
  switch (a) {
    case Activation::kGelu: return kernels::cpu::ActivationKind::kGelu;
    case Activation::kGeluTanh: return kernels::cpu::ActivationKind::kGeluTanh;
    case Activation::kBloomGelu: return kernels::cpu::ActivationKind::kBloomGelu;
    case Activation::kRelu: return kernels::cpu::ActivationKind::kRelu;
    case Activation::kSilu: return kernels::cpu::ActivationKind::kSilu;
  }
  return kernels::cpu::ActivationKind::kGelu;
}

const DecoderWeights* DecoderWeightsOf(const CausalLm& model) {
  const auto* decoder = dynamic_cast<const DecoderModel*>(&model);
  return decoder == nullptr ? nullptr : &decoder->weights();
}

}  // namespace ropewire::model
