#include "model/weights.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/huge_page_allocator.h"
#include "base/status_macros.h"

namespace ropewire::model {

using kernels::WeightFormat;

Weight Weight::Allocate(WeightFormat format, int64_t rows, int64_t cols) {
  Weight w;
  w.format_ = format;
  w.rows_ = rows;
  w.cols_ = cols;
  void* memory = AllocateHugePageAdvised(size_t(w.bytes()));
  if (memory == nullptr) throw std::bad_alloc();
  w.owner_ =
      std::shared_ptr<const void>(memory, [](const void* p) { std::free(const_cast<void*>(p)); });
  w.mutable_ = static_cast<uint8_t*>(memory);
  w.data_ = w.mutable_;
  return w;
}

Weight Weight::External(WeightFormat format, int64_t rows, int64_t cols, const void* data,
                        std::shared_ptr<const void> owner) {
  Weight w;
  w.format_ = format;
  w.rows_ = rows;
  w.cols_ = cols;
  w.owner_ = std::move(owner);
  w.data_ = static_cast<const uint8_t*>(data);
  return w;
}

Weight Weight::FromF32(const std::vector<float>& values, int64_t rows, int64_t cols) {
  Weight w = Allocate(WeightFormat::kF32, rows, cols);
  std::memcpy(w.mutable_, values.data(), sizeof(float) * size_t(rows * cols));
  return w;
}

std::vector<float> Weight::ToF32() const {
  std::vector<float> out(size_t(rows_ * cols_));
  kernels::DequantizeRows(view(), 0, rows_, out.data(), cols_);
  return out;
}

absl::StatusOr<WeightFormat> FormatOfDType(DType dtype) {
  switch (dtype) {
    case DType::kF32: return WeightFormat::kF32;
    case DType::kF16: return WeightFormat::kF16;
    case DType::kBF16: return WeightFormat::kBF16;
    default: return absl::InvalidArgumentError("not a floating-point dtype (F32, F16 or BF16)");
  }
}

DType WeightLoader::StoredDType(const std::string& name) const {
  auto info = store_.Find(name);
  return info.ok() ? (*info)->dtype : DType::kOther;
}

absl::Status WeightLoader::ConvertRows(const TensorInfo& info, int64_t rows, int64_t cols,
                                       Weight* dst, int64_t dst_first) const {
  auto stored = FormatOfDType(info.dtype);
  if (!stored.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(info.file, ": tensor \"", info.name,
                                                   "\" has dtype ", info.dtype_name, ": ",
                                                   stored.status().message()));
  }
  if (kernels::IsQuantized(dst->format()) && cols % kernels::kQuantBlock != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(info.file, ": tensor \"", info.name, "\" has rows of ", cols, " values, but ",
                     kernels::WeightFormatName(dst->format()), " stores rows in blocks of ",
                     kernels::kQuantBlock, " (choose another --quantization)"));
  }
  const int64_t src_row_bytes = kernels::RowBytes(*stored, cols);
  if (*stored == dst->format()) {
    std::memcpy(dst->MutableRow(dst_first), info.data, size_t(rows * src_row_bytes));
  } else {
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      kernels::DequantizeRow(*stored, info.data + r * src_row_bytes, cols, row.data());
      kernels::QuantizeRow(dst->format(), row.data(), cols, dst->MutableRow(dst_first + r));
    }
  }
  ReleaseMappedPages(info.data, info.num_bytes);
  return absl::OkStatus();
}

absl::StatusOr<Weight> WeightLoader::Load(const std::string& name, int64_t rows, int64_t cols,
                                          WeightFormat format) const {
  return LoadStacked({name}, {rows}, cols, format);
}

absl::StatusOr<Weight> WeightLoader::LoadStacked(const std::vector<std::string>& names,
                                                 const std::vector<int64_t>& rows, int64_t cols,
                                                 WeightFormat format) const {
  int64_t total = 0;
  std::vector<const TensorInfo*> infos;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(const TensorInfo* info, store_.FindShaped(names[i], {rows[i], cols}));
    infos.push_back(info);
    total += rows[i];
  }
  Weight w = Weight::Allocate(format, total, cols);
  int64_t next = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    RETURN_IF_ERROR(ConvertRows(*infos[i], rows[i], cols, &w, next));
    next += rows[i];
  }
  return w;
}

absl::StatusOr<Weight> WeightLoader::LoadTransposed(const std::string& name, int64_t rows,
                                                    int64_t cols, WeightFormat format) const {
  ASSIGN_OR_RETURN(const TensorInfo* info, store_.FindShaped(name, {cols, rows}));
  std::vector<float> stored(size_t(rows * cols));
  RETURN_IF_ERROR(store_.ReadF32(name, {cols, rows}, stored.data()));
  ReleaseMappedPages(info->data, info->num_bytes);
  if (kernels::IsQuantized(format) && cols % kernels::kQuantBlock != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(info->file, ": tensor \"", name, "\" has rows of ", cols, " values, but ",
                     kernels::WeightFormatName(format), " stores rows in blocks of ",
                     kernels::kQuantBlock, " (choose another --quantization)"));
  }
  Weight w = Weight::Allocate(format, rows, cols);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[c] = stored[c * rows + r];
    kernels::QuantizeRow(format, row.data(), cols, w.MutableRow(r));
  }
  return w;
}

absl::StatusOr<std::vector<float>> WeightLoader::LoadVector(const std::string& name,
                                                            int64_t n) const {
  return store_.ReadF32(name, {n});
}

absl::StatusOr<std::vector<float>> WeightLoader::LoadConcatenated(
    const std::vector<std::string>& names, const std::vector<int64_t>& sizes) const {
  std::vector<float> out;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<float> part, store_.ReadF32(names[i], {sizes[i]}));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace ropewire::model
