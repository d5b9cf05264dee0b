#include "model/families/checkpoint_loader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "base/status_macros.h"
#include "model/config_json.h"
#include "model/families/registry.h"

namespace ropewire::model {
namespace {

// Reads the tensors of one checkpoint under its layout's names.
class LayoutReader {
 public:
  LayoutReader(const ModelConfig& config, const CheckpointLayout& layout, const TensorStore& store)
      : c_(config), layout_(layout), loader_(store), root_(layout.roots.front()) {
    for (const std::string& root : layout.roots) {
      if (store.Contains(root + layout.embed_tokens + ".weight")) {
        root_ = root;
        break;
      }
    }
  }

  absl::StatusOr<DecoderWeights> Read() const;

 private:
  std::string Global(const std::string& name) const { return root_ + name; }
  std::string InLayer(int index, const std::string& name) const {
    return root_ + absl::Substitute(layout_.layer_prefix, index) + name;
  }

  absl::StatusOr<NormWeights> Norm(const std::string& name) const;
  // A linear layer's [rows, cols] weight (stored transposed for Conv1D layouts).
  absl::StatusOr<Matrix> Linear(const std::string& name, int64_t rows, int64_t cols) const;
  // Several linear layers' weights stacked into one [Σ rows, cols] matrix.
  absl::StatusOr<Matrix> Stacked(const std::vector<std::string>& names,
                                 const std::vector<int64_t>& rows, int64_t cols) const;
  absl::StatusOr<std::vector<float>> Biases(const std::vector<std::string>& names,
                                            const std::vector<int64_t>& sizes) const;
  absl::Status ReadAttention(int index, DecoderLayerWeights* layer) const;
  absl::Status ReadMlp(int index, DecoderLayerWeights* layer) const;
  absl::StatusOr<DecoderLayerWeights> ReadLayer(int index) const;
  absl::Status ReadEmbeddings(DecoderWeights* w) const;
  absl::Status ReadHead(DecoderWeights* w) const;

  const ModelConfig& c_;
  const CheckpointLayout& layout_;
  const WeightLoader loader_;
  std::string root_;
};

absl::StatusOr<NormWeights> LayoutReader::Norm(const std::string& name) const {
  NormWeights norm;
  ASSIGN_OR_RETURN(norm.weight, loader_.LoadVector(name + ".weight", c_.hidden_size));
  if (c_.norm_bias) {
    ASSIGN_OR_RETURN(norm.bias, loader_.LoadVector(name + ".bias", c_.hidden_size));
  }
  return norm;
}

absl::StatusOr<Matrix> LayoutReader::Linear(const std::string& name, int64_t rows,
                                            int64_t cols) const {
  if (!layout_.transposed_linears) return loader_.Load(name + ".weight", rows, cols);
  ASSIGN_OR_RETURN(Matrix stored, loader_.Load(name + ".weight", cols, rows));
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) m.data[r * cols + k] = stored.data[k * rows + r];
  }
  return m;
}

absl::StatusOr<Matrix> LayoutReader::Stacked(const std::vector<std::string>& names,
                                             const std::vector<int64_t>& rows, int64_t cols) const {
  if (layout_.transposed_linears) {
    return absl::InternalError("a transposed layout names separate projections");
  }
  std::vector<std::string> weights;
  for (const std::string& name : names) weights.push_back(name + ".weight");
  return loader_.LoadStacked(weights, rows, cols);
}

absl::StatusOr<std::vector<float>> LayoutReader::Biases(const std::vector<std::string>& names,
                                                        const std::vector<int64_t>& sizes) const {
  std::vector<std::string> biases;
  for (const std::string& name : names) biases.push_back(name + ".bias");
  return loader_.LoadConcatenated(biases, sizes);
}

absl::Status LayoutReader::ReadAttention(int index, DecoderLayerWeights* layer) const {
  const LayerTensorNames& n = layout_.layer;
  const int64_t h = c_.hidden_size;
  const int64_t q_rows = int64_t(c_.num_heads) * c_.head_dim;
  const int64_t kv_rows = int64_t(c_.num_kv_heads) * c_.head_dim;
  if (!n.qkv.empty()) {
    const std::string qkv = InLayer(index, n.qkv);
    ASSIGN_OR_RETURN(layer->qkv, Linear(qkv, q_rows + 2 * kv_rows, h));
    if (c_.qkv_bias) {
      ASSIGN_OR_RETURN(layer->qkv_bias, Biases({qkv}, {q_rows + 2 * kv_rows}));
    }
    DeinterleaveQkv(n.qkv_layout, c_.num_heads, c_.num_kv_heads, c_.head_dim, &layer->qkv,
                    &layer->qkv_bias);
  } else {
    const std::vector<std::string> names = {InLayer(index, n.q), InLayer(index, n.k),
                                            InLayer(index, n.v)};
    ASSIGN_OR_RETURN(layer->qkv, Stacked(names, {q_rows, kv_rows, kv_rows}, h));
    if (c_.qkv_bias) {
      ASSIGN_OR_RETURN(layer->qkv_bias, Biases(names, {q_rows, kv_rows, kv_rows}));
    }
  }
  const std::string o = InLayer(index, n.o);
  ASSIGN_OR_RETURN(layer->o_proj, Linear(o, h, q_rows));
  if (c_.o_bias) {
    ASSIGN_OR_RETURN(layer->o_bias, Biases({o}, {h}));
  }
  return absl::OkStatus();
}

absl::Status LayoutReader::ReadMlp(int index, DecoderLayerWeights* layer) const {
  const LayerTensorNames& n = layout_.layer;
  const int64_t h = c_.hidden_size;
  const int64_t inter = c_.intermediate_size;
  if (c_.gated_mlp && n.gate_up.empty() && n.gate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c_.source, ": a gated MLP needs gate weights this family does not name"));
  }
  std::vector<std::string> up_names;
  if (!c_.gated_mlp) {
    up_names = {InLayer(index, n.up)};
    ASSIGN_OR_RETURN(layer->up, Linear(up_names[0], inter, h));
  } else if (!n.gate_up.empty()) {
    up_names = {InLayer(index, n.gate_up)};
    ASSIGN_OR_RETURN(layer->up, Linear(up_names[0], 2 * inter, h));
  } else {
    up_names = {InLayer(index, n.gate), InLayer(index, n.up)};
    ASSIGN_OR_RETURN(layer->up, Stacked(up_names, {inter, inter}, h));
  }
  const std::string down = InLayer(index, n.down);
  ASSIGN_OR_RETURN(layer->down, Linear(down, h, inter));
  if (c_.mlp_bias) {
    ASSIGN_OR_RETURN(
        layer->up_bias,
        Biases(up_names,
               std::vector<int64_t>(up_names.size(), layer->up.rows / int64_t(up_names.size()))));
    ASSIGN_OR_RETURN(layer->down_bias, Biases({down}, {h}));
  }
  return absl::OkStatus();
}

absl::StatusOr<DecoderLayerWeights> LayoutReader::ReadLayer(int index) const {
  DecoderLayerWeights layer;
  ASSIGN_OR_RETURN(layer.attn_norm, Norm(InLayer(index, layout_.layer.attn_norm)));
  if (!layout_.layer.mlp_norm.empty()) {
    ASSIGN_OR_RETURN(layer.mlp_norm, Norm(InLayer(index, layout_.layer.mlp_norm)));
  }
  RETURN_IF_ERROR(ReadAttention(index, &layer));
  RETURN_IF_ERROR(ReadMlp(index, &layer));
  return layer;
}

absl::Status LayoutReader::ReadEmbeddings(DecoderWeights* w) const {
  const int64_t h = c_.hidden_size;
  const int64_t e = c_.embedding_dim > 0 ? c_.embedding_dim : h;
  ASSIGN_OR_RETURN(w->embed_tokens,
                   loader_.Load(Global(layout_.embed_tokens) + ".weight", c_.vocab_size, e));
  if (c_.embedding_norm) {
    ASSIGN_OR_RETURN(w->embed_norm, Norm(Global(layout_.embed_norm)));
  }
  if (e != h) {
    ASSIGN_OR_RETURN(w->project_in, loader_.Load(Global(layout_.project_in) + ".weight", h, e));
    ASSIGN_OR_RETURN(w->project_out, loader_.Load(Global(layout_.project_out) + ".weight", e, h));
  }
  const kernels::AbsoluteSpec& table = c_.position.absolute;
  if (c_.position.kind == kernels::PositionKind::kLearned) {
    ASSIGN_OR_RETURN(w->position_table,
                     loader_.Load(Global(layout_.position_table) + ".weight", table.table_rows, h));
  } else if (c_.position.kind == kernels::PositionKind::kSinusoidal) {
    const std::vector<float> rows =
        kernels::SinusoidalPositionTable(table.table_rows, static_cast<int>(h), table.padding_idx);
    w->position_table.rows = table.table_rows;
    w->position_table.cols = h;
    w->position_table.data.assign(rows.begin(), rows.end());
  }
  return absl::OkStatus();
}

absl::Status LayoutReader::ReadHead(DecoderWeights* w) const {
  if (c_.final_norm) {
    ASSIGN_OR_RETURN(w->final_norm, Norm(Global(layout_.final_norm)));
  }
  const std::string head = Global(layout_.lm_head);
  if (!c_.tie_word_embeddings) {
    ASSIGN_OR_RETURN(w->lm_head,
                     loader_.Load(head + ".weight", c_.vocab_size, w->embed_tokens.cols));
  }
  if (c_.lm_head_bias) {
    ASSIGN_OR_RETURN(w->lm_head_bias, loader_.LoadVector(head + ".bias", c_.vocab_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<DecoderWeights> LayoutReader::Read() const {
  DecoderWeights w;
  RETURN_IF_ERROR(ReadEmbeddings(&w));
  for (int i = 0; i < c_.num_layers; ++i) {
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, ReadLayer(i));
    w.layers.push_back(std::move(layer));
  }
  RETURN_IF_ERROR(ReadHead(&w));
  return w;
}

// Index of the head-sized row block that holds `part` (0: query head `head`; 1, 2: key /
// value of kv head `head`) in a fused qkv weight of `layout`.
int64_t RowBlockIndex(FusedQkvLayout layout, int part, int head, int num_heads, int num_kv_heads) {
  const int group = num_heads / num_kv_heads;
  switch (layout) {
    case FusedQkvLayout::kStacked:
      return part == 0 ? head : part == 1 ? num_heads + head : num_heads + num_kv_heads + head;
    case FusedQkvLayout::kPerHead: return int64_t(head) * 3 + part;
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

absl::StatusOr<DecoderWeights> LoadDecoderWeights(const ModelConfig& config,
                                                  const CheckpointLayout& layout,
                                                  const TensorStore& store) {
  ASSIGN_OR_RETURN(DecoderWeights weights, LayoutReader(config, layout, store).Read());
  RETURN_IF_ERROR(ValidateDecoder(config, weights));
  return weights;
}

absl::StatusOr<ModelCheckpoint> LoadCheckpoint(const std::string& dir) {
  ModelCheckpoint checkpoint;
  ASSIGN_OR_RETURN(checkpoint.config, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(auto store, TensorStore::Open(dir));
  // LoadModelConfig only accepts model types that have a family.
  const ModelFamily& family = *FindModelFamily(checkpoint.config.model_type);
  ASSIGN_OR_RETURN(checkpoint.weights,
                   LoadDecoderWeights(checkpoint.config, family.layout(checkpoint.config), *store));
  return checkpoint;
}

}  // namespace ropewire::model
