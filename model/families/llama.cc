// Llama-family decoder (llama, mistral, qwen2): RMSNorm, RoPE inside paged attention, GQA,
// SwiGLU MLP; optional q/k/v, o and MLP biases; optional tied embeddings and sliding windows.
// Weight names are exactly those transformers saves.
#include "model/families/llama.h"

#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/rope_table.h"
#include "model/step_context.h"
#include "model/weights.h"

namespace ropewire::model {
namespace {

namespace cpu = kernels::cpu;

struct LlamaLayer {
  std::vector<float> input_norm;
  Matrix qkv;                  // [q; k; v] stacked: [(H + 2 KV) * d, hidden]
  std::vector<float> qkv_bias;  // empty when the model has none
  Matrix o_proj;               // [hidden, H * d]
  std::vector<float> o_bias;
  std::vector<float> post_attention_norm;
  Matrix gate_up;              // [gate; up] stacked: [2 I, hidden]
  std::vector<float> gate_up_bias;
  Matrix down;                 // [hidden, I]
  std::vector<float> down_bias;
};

// Scratch buffers sized for the largest step seen so far.
struct Workspace {
  std::vector<float> hidden, normed, qkv, attention, gate_up, activation, final_rows;
};

class LlamaModel : public CausalLm {
 public:
  explicit LlamaModel(ModelConfig config)
      : config_(std::move(config)), rope_table_(config_.position.rope) {}

  const ModelConfig& config() const override { return config_; }
  absl::Status LoadWeights(const TensorStore& store);
  absl::Status Forward(const StepPlan& plan, KvCache& cache, float* logits) override;

 private:
  absl::Status LoadLayer(const WeightLoader& loader, int index, LlamaLayer* layer);
  void RunLayer(int index, KvCache& cache, int64_t tokens);

  ModelConfig config_;
  kernels::RopeTable rope_table_;
  Matrix embed_tokens_;
  std::vector<LlamaLayer> layers_;
  std::vector<float> final_norm_;
  Matrix lm_head_;  // empty when tied to embed_tokens
  Workspace ws_;
  StepContext step_;
};

absl::Status LlamaModel::LoadLayer(const WeightLoader& loader, int index, LlamaLayer* layer) {
  const ModelConfig& c = config_;
  const std::string p = absl::StrCat("model.layers.", index, ".");
  const int64_t q_rows = int64_t(c.num_heads) * c.head_dim;
  const int64_t kv_rows = int64_t(c.num_kv_heads) * c.head_dim;
  const int64_t h = c.hidden_size;
  const int64_t inter = c.intermediate_size;
  ASSIGN_OR_RETURN(layer->input_norm, loader.LoadVector(p + "input_layernorm.weight", h));
  ASSIGN_OR_RETURN(layer->post_attention_norm,
                   loader.LoadVector(p + "post_attention_layernorm.weight", h));
  const std::string a = p + "self_attn.";
  ASSIGN_OR_RETURN(layer->qkv, loader.LoadStacked({a + "q_proj.weight", a + "k_proj.weight",
                                                   a + "v_proj.weight"},
                                                  {q_rows, kv_rows, kv_rows}, h));
  if (c.qkv_bias) {
    ASSIGN_OR_RETURN(layer->qkv_bias,
                     loader.LoadConcatenated({a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"},
                                             {q_rows, kv_rows, kv_rows}));
  }
  ASSIGN_OR_RETURN(layer->o_proj, loader.Load(a + "o_proj.weight", h, q_rows));
  if (c.o_bias) {
    ASSIGN_OR_RETURN(layer->o_bias, loader.LoadVector(a + "o_proj.bias", h));
  }
  const std::string m = p + "mlp.";
  ASSIGN_OR_RETURN(layer->gate_up, loader.LoadStacked({m + "gate_proj.weight", m + "up_proj.weight"},
                                                      {inter, inter}, h));
  ASSIGN_OR_RETURN(layer->down, loader.Load(m + "down_proj.weight", h, inter));
  if (c.mlp_bias) {
    ASSIGN_OR_RETURN(layer->gate_up_bias,
                     loader.LoadConcatenated({m + "gate_proj.bias", m + "up_proj.bias"}, {inter, inter}));
    ASSIGN_OR_RETURN(layer->down_bias, loader.LoadVector(m + "down_proj.bias", h));
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::LoadWeights(const TensorStore& store) {
  const WeightLoader loader(store);
  ASSIGN_OR_RETURN(embed_tokens_,
                   loader.Load("model.embed_tokens.weight", config_.vocab_size, config_.hidden_size));
  layers_.resize(config_.num_layers);
  for (int i = 0; i < config_.num_layers; ++i) RETURN_IF_ERROR(LoadLayer(loader, i, &layers_[i]));
  ASSIGN_OR_RETURN(final_norm_, loader.LoadVector("model.norm.weight", config_.hidden_size));
  if (!config_.tie_word_embeddings) {
    ASSIGN_OR_RETURN(lm_head_, loader.Load("lm_head.weight", config_.vocab_size, config_.hidden_size));
  }
  return absl::OkStatus();
}

void LlamaModel::RunLayer(int index, KvCache& cache, int64_t tokens) {
  const ModelConfig& c = config_;
  const LlamaLayer& layer = layers_[index];
  const int64_t h = c.hidden_size;
  const int64_t q_width = int64_t(c.num_heads) * c.head_dim;
  const int64_t kv_width = int64_t(c.num_kv_heads) * c.head_dim;
  const int64_t qkv_width = q_width + 2 * kv_width;
  const int64_t inter = c.intermediate_size;
  float* x = ws_.hidden.data();

  cpu::RmsNorm(x, h, layer.input_norm.data(), c.norm_eps, ws_.normed.data(), h, tokens, h);
  cpu::MatMulTransposedB(ws_.normed.data(), h, layer.qkv.ptr(), h, ws_.qkv.data(), qkv_width,
                         tokens, qkv_width, h);
  if (!layer.qkv_bias.empty()) cpu::AddBias(ws_.qkv.data(), qkv_width, layer.qkv_bias.data(), tokens, qkv_width);

  const float* q = ws_.qkv.data();
  const float* k = q + q_width;
  const float* v = k + kv_width;
  cpu::WriteKv(k, qkv_width, v, qkv_width, step_.slots.data(), tokens, cache.geometry(),
               cache.Layer(index));
  cpu::AttentionParams params;
  params.num_heads = c.num_heads;
  params.num_kv_heads = c.num_kv_heads;
  params.head_dim = c.head_dim;
  params.softmax_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  params.sliding_window = c.sliding_window.empty() ? 0 : c.sliding_window[index];
  params.position = &c.position;
  params.rope_table = &rope_table_;
  cpu::PagedAttention(q, qkv_width, cache.ConstLayer(index), cache.geometry(), step_.batch, params,
                      ws_.attention.data(), q_width);
  cpu::MatMulTransposedB(ws_.attention.data(), q_width, layer.o_proj.ptr(), q_width, x, h, tokens,
                         h, q_width, /*accumulate=*/true);
  if (!layer.o_bias.empty()) cpu::AddBias(x, h, layer.o_bias.data(), tokens, h);

  cpu::RmsNorm(x, h, layer.post_attention_norm.data(), c.norm_eps, ws_.normed.data(), h, tokens, h);
  cpu::MatMulTransposedB(ws_.normed.data(), h, layer.gate_up.ptr(), h, ws_.gate_up.data(),
                         2 * inter, tokens, 2 * inter, h);
  if (!layer.gate_up_bias.empty()) {
    cpu::AddBias(ws_.gate_up.data(), 2 * inter, layer.gate_up_bias.data(), tokens, 2 * inter);
  }
  cpu::SiluGateMul(ws_.gate_up.data(), 2 * inter, ws_.activation.data(), inter, tokens, inter);
  cpu::MatMulTransposedB(ws_.activation.data(), inter, layer.down.ptr(), inter, x, h, tokens, h,
                         inter, /*accumulate=*/true);
  if (!layer.down_bias.empty()) cpu::AddBias(x, h, layer.down_bias.data(), tokens, h);
}

absl::Status LlamaModel::Forward(const StepPlan& plan, KvCache& cache, float* logits) {
  const ModelConfig& c = config_;
  const int64_t tokens = plan.num_tokens();
  const int64_t h = c.hidden_size;
  const int64_t q_width = int64_t(c.num_heads) * c.head_dim;
  const int64_t qkv_width = q_width + 2 * int64_t(c.num_kv_heads) * c.head_dim;
  ws_.hidden.resize(tokens * h);
  ws_.normed.resize(tokens * h);
  ws_.qkv.resize(tokens * qkv_width);
  ws_.attention.resize(tokens * q_width);
  ws_.gate_up.resize(tokens * 2 * c.intermediate_size);
  ws_.activation.resize(tokens * c.intermediate_size);
  step_.Prepare(plan, cache.geometry().block_size, &rope_table_);

  cpu::EmbeddingLookup(embed_tokens_.ptr(), h, plan.token_ids.data(), tokens, ws_.hidden.data(), h);
  for (int i = 0; i < c.num_layers; ++i) RunLayer(i, cache, tokens);

  const int64_t rows = static_cast<int64_t>(plan.logits_rows.size());
  if (rows == 0) return absl::OkStatus();
  ws_.final_rows.resize(rows * h);
  cpu::GatherRows(ws_.hidden.data(), h, plan.logits_rows.data(), rows, ws_.final_rows.data(), h, h);
  cpu::RmsNorm(ws_.final_rows.data(), h, final_norm_.data(), c.norm_eps, ws_.final_rows.data(), h,
               rows, h);
  const float* head = c.tie_word_embeddings ? embed_tokens_.ptr() : lm_head_.ptr();
  cpu::MatMulTransposedB(ws_.final_rows.data(), h, head, h, logits, c.vocab_size, rows,
                         c.vocab_size, h);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CausalLm>> LoadLlamaFamily(const ModelConfig& config,
                                                          const TensorStore& store) {
  auto model = std::make_unique<LlamaModel>(config);
  RETURN_IF_ERROR(model->LoadWeights(store));
  return std::unique_ptr<CausalLm>(std::move(model));
}

}  // namespace ropewire::model
