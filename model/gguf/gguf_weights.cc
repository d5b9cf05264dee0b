#include "model/gguf/gguf_weights.h"

#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "absl/strings/str_join.h"
#include "absl/strings/substitute.h"
#include "base/status_macros.h"
#include "gguf/gguf_file.h"
#include "gguf/str_cat.h"
#include "model/gguf/gguf_config.h"
#include "model/safetensors.h"

namespace ropewire::model {
namespace {

using gguf::GgufFile;
using gguf::TensorType;
using kernels::WeightFormat;

absl::StatusOr<WeightFormat> FormatOfTensor(const GgufFile& file, const gguf::TensorInfo& t) {
  switch (t.type) {
    case TensorType::kF32: return WeightFormat::kF32;
    case TensorType::kF16: return WeightFormat::kF16;
    case TensorType::kBF16: return WeightFormat::kBF16;
    case TensorType::kQ8_0: return WeightFormat::kQ8_0;
    case TensorType::kQ4_0: return WeightFormat::kQ4_0;
    case TensorType::kQ4_1: return WeightFormat::kQ4_1;
    default:
      return absl::InvalidArgumentError(gguf::Cat(
          file.source(), ": tensor \"", t.name, "\" has type ", gguf::Traits(t.type).name,
          ", which ropewire cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)"));
  }
}

// How much of a weight's precision a format keeps, to pick one format for tensors of mixed
// types that are stacked into one matrix (converting to the widest loses nothing).
int Precision(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32: return 5;
    case WeightFormat::kF16:
    case WeightFormat::kBF16: return 4;
    case WeightFormat::kQ8_0: return 3;
    case WeightFormat::kQ4_1: return 2;
    case WeightFormat::kQ4_0: return 1;
  }
  return 0;
}

WeightFormat Widest(const std::vector<WeightFormat>& formats) {
  WeightFormat widest = formats.front();
  for (WeightFormat f : formats) {
    if (Precision(f) > Precision(widest)) {
      widest = f;
    } else if (Precision(f) == Precision(widest) && f != widest) {
      widest = WeightFormat::kF32;  // f16 with bf16: neither holds the other
    }
  }
  return widest;
}

// Reads the tensors a GgufModelDescription names into DecoderWeights.
class GgufWeightReader {
 public:
  GgufWeightReader(std::shared_ptr<const GgufFile> file, const ModelConfig& config,
                   const CheckpointLayout& layout, const WeightFormatPolicy& formats)
      : file_(std::move(file)), c_(config), layout_(layout), formats_(formats) {}

  absl::StatusOr<DecoderWeights> Read();
  // The distinct formats of the matrices read, for model info ("q4_1, q8_0").
  std::string FormatsRead() const { return absl::StrJoin(formats_read_, ", "); }

 private:
  std::string InLayer(int index, const std::string& name) const {
    return absl::Substitute(layout_.layer_prefix, index) + name;
  }
  // The tensor `name` with `dims` (GGUF order: a matrix of `rows` rows of `cols` is {cols, rows}).
  absl::StatusOr<const gguf::TensorInfo*> Shaped(const std::string& name,
                                                 const std::vector<int64_t>& dims) const;
  // Several [rows_i, cols] tensors stacked into one [Σ rows_i, cols] matrix of `role`.
  absl::StatusOr<Weight> Stacked(const std::vector<std::string>& names,
                                 const std::vector<int64_t>& rows, int64_t cols, WeightRole role);
  absl::StatusOr<Weight> Matrix(const std::string& name, int64_t rows, int64_t cols,
                                WeightRole role) {
    return Stacked({name}, {rows}, cols, role);
  }
  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n) const;
  absl::StatusOr<std::vector<float>> Concatenated(const std::vector<std::string>& names,
                                                  const std::vector<int64_t>& sizes) const;
  absl::StatusOr<NormWeights> Norm(const std::string& name) const;
  absl::StatusOr<DecoderLayerWeights> ReadLayer(int index);

  std::shared_ptr<const GgufFile> file_;
  const ModelConfig& c_;
  const CheckpointLayout& layout_;
  const WeightFormatPolicy& formats_;
  std::set<std::string> formats_read_;
};

absl::StatusOr<const gguf::TensorInfo*> GgufWeightReader::Shaped(
    const std::string& name, const std::vector<int64_t>& dims) const {
  ASSIGN_OR_RETURN(const gguf::TensorInfo* info, file_->Tensor(name));
  if (info->dims != dims) {
    return absl::InvalidArgumentError(
        gguf::Cat(file_->source(), ": tensor \"", name, "\" has dims ", info->DimsString(),
                  ", but the metadata gives [", absl::StrJoin(dims, ", "),
                  "] (GGUF order, row length first)"));
  }
  return info;
}

absl::StatusOr<Weight> GgufWeightReader::Stacked(const std::vector<std::string>& names,
                                                 const std::vector<int64_t>& rows, int64_t cols,
                                                 WeightRole role) {
  std::vector<const gguf::TensorInfo*> infos;
  std::vector<WeightFormat> stored;
  int64_t total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(const gguf::TensorInfo* info, Shaped(names[i] + ".weight", {cols, rows[i]}));
    ASSIGN_OR_RETURN(WeightFormat format, FormatOfTensor(*file_, *info));
    infos.push_back(info);
    stored.push_back(format);
    total += rows[i];
  }
  const WeightFormat target = formats_.ForStoredFormat(role, Widest(stored));
  formats_read_.insert(kernels::WeightFormatName(target));
  // In place when every part is stored as served and the parts follow each other in the file
  // (llama.cpp writes ffn_gate right before ffn_up, so [gate; up] is one span).
  bool in_place = true;
  for (size_t i = 0; i < infos.size(); ++i) {
    in_place = in_place && stored[i] == target &&
               (i == 0 || infos[i]->data == infos[i - 1]->data + infos[i - 1]->num_bytes);
  }
  if (in_place) return Weight::External(target, total, cols, infos.front()->data, file_);
  if (kernels::IsQuantized(target) && cols % kernels::kQuantBlock != 0) {
    return absl::InvalidArgumentError(
        gguf::Cat(file_->source(), ": tensor \"", names.front(), ".weight\" has rows of ", cols,
                  " values, but ", kernels::WeightFormatName(target), " stores rows in blocks of ",
                  kernels::kQuantBlock, " (choose another --quantization)"));
  }
  // Parts that are not adjacent (llama.cpp writes attn_k, attn_output, attn_q, attn_v) are
  // copied into one matrix, byte for byte when their format is kept: one fused projection runs
  // faster than three, and the copy is small (q, k and v are a fraction of a layer's weights).
  Weight w = Weight::Allocate(target, total, cols);
  int64_t next = 0;
  std::vector<float> row(static_cast<size_t>(cols));
  for (size_t i = 0; i < infos.size(); ++i) {
    const int64_t src_row_bytes = kernels::RowBytes(stored[i], cols);
    if (stored[i] == target) {
      std::memcpy(w.MutableRow(next), infos[i]->data, size_t(rows[i] * src_row_bytes));
      next += rows[i];
      continue;
    }
    for (int64_t r = 0; r < rows[i]; ++r, ++next) {
      kernels::DequantizeRow(stored[i], infos[i]->data + r * src_row_bytes, cols, row.data());
      kernels::QuantizeRow(target, row.data(), cols, w.MutableRow(next));
    }
    // Converted: the file's pages of this tensor are no longer needed in memory.
    ReleaseMappedPages(infos[i]->data, int64_t(infos[i]->num_bytes));
  }
  return w;
}

absl::StatusOr<std::vector<float>> GgufWeightReader::Vector(const std::string& name,
                                                            int64_t n) const {
  ASSIGN_OR_RETURN(const gguf::TensorInfo* info, Shaped(name, {n}));
  ASSIGN_OR_RETURN(WeightFormat format, FormatOfTensor(*file_, *info));
  std::vector<float> values(static_cast<size_t>(n));
  kernels::DequantizeRow(format, info->data, n, values.data());
  return values;
}

absl::StatusOr<std::vector<float>> GgufWeightReader::Concatenated(
    const std::vector<std::string>& names, const std::vector<int64_t>& sizes) const {
  std::vector<float> out;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<float> part, Vector(names[i], sizes[i]));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

absl::StatusOr<NormWeights> GgufWeightReader::Norm(const std::string& name) const {
  NormWeights norm;
  ASSIGN_OR_RETURN(norm.weight, Vector(name + ".weight", c_.hidden_size));
  if (c_.norm_bias) {
    ASSIGN_OR_RETURN(norm.bias, Vector(name + ".bias", c_.hidden_size));
  }
  return norm;
}

absl::StatusOr<DecoderLayerWeights> GgufWeightReader::ReadLayer(int index) {
  const LayerTensorNames& n = layout_.layer;
  const int64_t h = c_.hidden_size;
  const int64_t inter = c_.intermediate_size;
  const int64_t q_rows = int64_t(c_.num_heads) * c_.head_dim;
  const int64_t kv_rows = int64_t(c_.num_kv_heads) * c_.head_dim;
  DecoderLayerWeights layer;
  ASSIGN_OR_RETURN(layer.attn_norm, Norm(InLayer(index, n.attn_norm)));
  ASSIGN_OR_RETURN(layer.mlp_norm, Norm(InLayer(index, n.mlp_norm)));
  const std::vector<std::string> qkv = {InLayer(index, n.q), InLayer(index, n.k),
                                        InLayer(index, n.v)};
  ASSIGN_OR_RETURN(layer.qkv, Stacked(qkv, {q_rows, kv_rows, kv_rows}, h, WeightRole::kProjection));
  if (c_.qkv_bias) {
    ASSIGN_OR_RETURN(layer.qkv_bias,
                     Concatenated({qkv[0] + ".bias", qkv[1] + ".bias", qkv[2] + ".bias"},
                                  {q_rows, kv_rows, kv_rows}));
  }
  ASSIGN_OR_RETURN(layer.o_proj, Matrix(InLayer(index, n.o), h, q_rows, WeightRole::kProjection));
  if (c_.o_bias) {
    ASSIGN_OR_RETURN(layer.o_bias, Vector(InLayer(index, n.o) + ".bias", h));
  }
  ASSIGN_OR_RETURN(layer.up, Stacked({InLayer(index, n.gate), InLayer(index, n.up)}, {inter, inter},
                                     h, WeightRole::kProjection));
  ASSIGN_OR_RETURN(layer.down, Matrix(InLayer(index, n.down), h, inter, WeightRole::kProjection));
  return layer;
}

absl::StatusOr<DecoderWeights> GgufWeightReader::Read() {
  if (!c_.gated_mlp || c_.mlp_bias || c_.embedding_dim > 0 || !c_.final_norm || c_.lm_head_bias) {
    return absl::InternalError(
        gguf::Cat(file_->source(), ": the GGUF reader serves Llama-style decoders only"));
  }
  DecoderWeights w;
  // A tied head multiplies the embedding table, so the table takes the head's format.
  const WeightRole embed_role =
      c_.tie_word_embeddings ? WeightRole::kLmHead : WeightRole::kEmbedding;
  ASSIGN_OR_RETURN(w.embed_tokens,
                   Matrix(layout_.embed_tokens, c_.vocab_size, c_.hidden_size, embed_role));
  for (int i = 0; i < c_.num_layers; ++i) {
    ASSIGN_OR_RETURN(DecoderLayerWeights layer, ReadLayer(i));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.final_norm, Norm(layout_.final_norm));
  if (!c_.tie_word_embeddings) {
    ASSIGN_OR_RETURN(w.lm_head,
                     Matrix(layout_.lm_head, c_.vocab_size, c_.hidden_size, WeightRole::kLmHead));
  }
  return w;
}

// The stored Q/K rows pair (2i, 2i + 1) within each head (see the header): rotate those pairs.
absl::Status UseInterleavedRope(ModelConfig* config) {
  if (config->position.kind != kernels::PositionKind::kRope) {
    return absl::InternalError(
        gguf::Cat(config->source, ": a GGUF model with permuted Q/K rows must use RoPE"));
  }
  config->position.rope.layout = kernels::RopeLayout::kInterleaved;
  for (kernels::PositionEncoding& layer : config->position_by_layer) {
    layer.rope.layout = kernels::RopeLayout::kInterleaved;
  }
  return absl::OkStatus();
}

}  // namespace

bool IsGgufModelPath(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

absl::StatusOr<ModelConfig> LoadGgufModelConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  ASSIGN_OR_RETURN(GgufModelDescription model, DescribeGgufModel(*file));
  if (model.qk_rows_interleaved) RETURN_IF_ERROR(UseInterleavedRope(&model.config));
  return model.config;
}

absl::StatusOr<ModelCheckpoint> LoadGgufCheckpoint(const std::string& path,
                                                   const WeightFormatOptions& options) {
  ASSIGN_OR_RETURN(const WeightFormatPolicy formats, WeightFormatPolicy::Create(options));
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> opened, GgufFile::Open(path));
  // Shared: every Weight served in place keeps the mapping alive.
  std::shared_ptr<const GgufFile> file = std::move(opened);
  ASSIGN_OR_RETURN(GgufModelDescription model, DescribeGgufModel(*file));
  if (model.qk_rows_interleaved) RETURN_IF_ERROR(UseInterleavedRope(&model.config));
  ModelCheckpoint checkpoint;
  checkpoint.config = std::move(model.config);
  GgufWeightReader reader(file, checkpoint.config, model.layout, formats);
  ASSIGN_OR_RETURN(checkpoint.weights, reader.Read());
  RETURN_IF_ERROR(ValidateDecoder(checkpoint.config, checkpoint.weights));
  checkpoint.weight_formats = gguf::Cat(formats.Describe(), " (", reader.FormatsRead(), ")");
  return checkpoint;
}

}  // namespace ropewire::model
