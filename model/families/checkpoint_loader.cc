#include "model/families/checkpoint_loader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "base/status_macros.h"
#include "model/config_json.h"
#include "model/families/registry.h"
#include "model/gguf/gguf_weights.h"

namespace ropewire::model {
namespace {

// Reads the tensors of one checkpoint under its layout's names.
class LayoutReader {
 public:
  LayoutReader(const ModelConfig& config, const CheckpointLayout& layout, const TensorStore& store,
               const WeightFormatPolicy& formats)
      : c_(config),
        layout_(layout),
        formats_(formats),
        loader_(store),
        root_(layout.roots.front()) {
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
  // The storage format of `name`.weight in `role`.
  kernels::WeightFormat FormatOf(const std::string& name, WeightRole role) const {
    return formats_.For(role, loader_.StoredDType(name + ".weight"));
  }
  // A projection's [rows, cols] weight (stored transposed for Conv1D layouts).
  absl::StatusOr<Weight> Linear(const std::string& name, int64_t rows, int64_t cols) const;
  // Several projections' weights stacked into one [Σ rows, cols] matrix.
  absl::StatusOr<Weight> Stacked(const std::vector<std::string>& names,
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
  const WeightFormatPolicy& formats_;
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

absl::StatusOr<Weight> LayoutReader::Linear(const std::string& name, int64_t rows,
                                            int64_t cols) const {
  const kernels::WeightFormat format = FormatOf(name, WeightRole::kProjection);
  if (!layout_.transposed_linears) return loader_.Load(name + ".weight", rows, cols, format);
  return loader_.LoadTransposed(name + ".weight", rows, cols, format);
}

absl::StatusOr<Weight> LayoutReader::Stacked(const std::vector<std::string>& names,
                                             const std::vector<int64_t>& rows, int64_t cols) const {
  if (layout_.transposed_linears) {
    return absl::InternalError("a transposed layout names separate projections");
  }
  std::vector<std::string> weights;
  for (const std::string& name : names) weights.push_back(name + ".weight");
  return loader_.LoadStacked(weights, rows, cols, FormatOf(names.front(), WeightRole::kProjection));
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
               std::vector<int64_t>(up_names.size(), layer->up.rows() / int64_t(up_names.size()))));
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
  const std::string embed = Global(layout_.embed_tokens);
  // A tied head multiplies the embedding table, so the table takes the head's format.
  const WeightRole embed_role =
      c_.tie_word_embeddings ? WeightRole::kLmHead : WeightRole::kEmbedding;
  ASSIGN_OR_RETURN(w->embed_tokens,
                   loader_.Load(embed + ".weight", c_.vocab_size, e, FormatOf(embed, embed_role)));
  if (c_.embedding_norm) {
    ASSIGN_OR_RETURN(w->embed_norm, Norm(Global(layout_.embed_norm)));
  }
  if (e != h) {
    ASSIGN_OR_RETURN(w->project_in, Linear(Global(layout_.project_in), h, e));
    ASSIGN_OR_RETURN(w->project_out, Linear(Global(layout_.project_out), e, h));
  }
  const kernels::AbsoluteSpec& table = c_.position.absolute;
  if (c_.position.kind == kernels::PositionKind::kLearned) {
    ASSIGN_OR_RETURN(w->position_table,
                     loader_.Load(Global(layout_.position_table) + ".weight", table.table_rows, h,
                                  kernels::WeightFormat::kF32));
  } else if (c_.position.kind == kernels::PositionKind::kSinusoidal) {
    w->position_table = Weight::FromF32(
        kernels::SinusoidalPositionTable(table.table_rows, static_cast<int>(h), table.padding_idx),
        table.table_rows, h);
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
                     loader_.Load(head + ".weight", c_.vocab_size, w->embed_tokens.cols(),
                                  FormatOf(head, WeightRole::kLmHead)));
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
                     Weight* weight, std::vector<float>* bias) {
  if (layout == FusedQkvLayout::kStacked) return;
  // Whole rows move (a row never splits a quantized block), so any format reorders the same way.
  Weight rows = Weight::Allocate(weight->format(), weight->rows(), weight->cols());
  const int64_t head_bytes = head_dim * weight->row_bytes();
  std::vector<float> bias_rows(bias->size());
  int64_t dst_block = 0;
  for (int part = 0; part < 3; ++part) {
    const int heads = part == 0 ? num_heads : num_kv_heads;
    for (int head = 0; head < heads; ++head, ++dst_block) {
      const int64_t src_block = RowBlockIndex(layout, part, head, num_heads, num_kv_heads);
      std::memcpy(rows.MutableRow(dst_block * head_dim), weight->Row(src_block * head_dim),
                  size_t(head_bytes));
      if (!bias->empty()) {
        std::copy_n(bias->begin() + src_block * head_dim, head_dim,
                    bias_rows.begin() + dst_block * head_dim);
      }
    }
  }
  *weight = std::move(rows);
  *bias = std::move(bias_rows);
}

absl::StatusOr<DecoderWeights> LoadDecoderWeights(const ModelConfig& config,
                                                  const CheckpointLayout& layout,
                                                  const TensorStore& store,
                                                  const WeightFormatPolicy& formats) {
  ASSIGN_OR_RETURN(DecoderWeights weights, LayoutReader(config, layout, store, formats).Read());
  RETURN_IF_ERROR(ValidateDecoder(config, weights));
  return weights;
}

absl::StatusOr<ModelCheckpoint> LoadCheckpoint(const std::string& dir,
                                               const WeightFormatOptions& options) {
  if (IsGgufModelPath(dir)) return LoadGgufCheckpoint(dir, options);
  ASSIGN_OR_RETURN(const WeightFormatPolicy formats, WeightFormatPolicy::Create(options));
  ModelCheckpoint checkpoint;
  ASSIGN_OR_RETURN(checkpoint.config, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(auto store, TensorStore::Open(dir));
  // LoadModelConfig only accepts model types that have a family.
  const ModelFamily& family = *FindModelFamily(checkpoint.config.model_type);
  ASSIGN_OR_RETURN(
      checkpoint.weights,
      LoadDecoderWeights(checkpoint.config, family.layout(checkpoint.config), *store, formats));
  checkpoint.weight_formats = formats.Describe();
  return checkpoint;
}

}  // namespace ropewire::model
