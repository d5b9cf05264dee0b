// Weights as the model holds them: matrices in a storage format (kernels/weight_format.h), and
// the loader that reads them out of a TensorStore — converting or quantizing a tensor row by row,
// so no checkpoint is ever widened to f32 whole in memory (DESIGN.md decision 9).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/weight_format.h"
#include "model/safetensors.h"

namespace ropewire::model {

// A row-major [rows, cols] matrix in `format`: owned storage (huge-page advised, see
// base/huge_page_allocator.h) or rows that live elsewhere, e.g. in a memory-mapped file.
// Copies share the storage.
class Weight {
 public:
  Weight() = default;
  // Uninitialised storage for rows × cols values.
  static Weight Allocate(kernels::WeightFormat format, int64_t rows, int64_t cols);
  // Rows stored at `data`, kept alive by `owner`.
  static Weight External(kernels::WeightFormat format, int64_t rows, int64_t cols, const void* data,
                         std::shared_ptr<const void> owner);
  // An f32 matrix holding `values` (rows × cols of them).
  static Weight FromF32(const std::vector<float>& values, int64_t rows, int64_t cols);

  kernels::WeightFormat format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool empty() const { return rows_ == 0; }
  int64_t row_bytes() const { return kernels::RowBytes(format_, cols_); }
  int64_t bytes() const { return rows_ * row_bytes(); }

  kernels::WeightView view() const { return {format_, data_, rows_, cols_}; }
  const uint8_t* Row(int64_t r) const { return data_ + r * row_bytes(); }
  uint8_t* MutableRow(int64_t r) { return mutable_ + r * row_bytes(); }       // Allocate()d only
  const float* f32() const { return reinterpret_cast<const float*>(data_); }  // kF32 only
  // The whole matrix as f32 (a copy, whatever the format).
  std::vector<float> ToF32() const;

 private:
  kernels::WeightFormat format_ = kernels::WeightFormat::kF32;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  uint8_t* mutable_ = nullptr;
};

// Reads tensors into Weights of a requested format. Every tensor's mapped pages are released
// once it is converted (ReleaseMappedPages), so loading holds at most one tensor twice.
class WeightLoader {
 public:
  explicit WeightLoader(const TensorStore& store) : store_(store) {}

  // A [rows, cols] tensor stored as `format`.
  absl::StatusOr<Weight> Load(const std::string& name, int64_t rows, int64_t cols,
                              kernels::WeightFormat format) const;
  // Several [rows_i, cols] tensors stacked vertically into one [Σ rows_i, cols] matrix.
  absl::StatusOr<Weight> LoadStacked(const std::vector<std::string>& names,
                                     const std::vector<int64_t>& rows, int64_t cols,
                                     kernels::WeightFormat format) const;
  // A tensor stored [cols, rows] (GPT-2's Conv1D) as a [rows, cols] matrix.
  absl::StatusOr<Weight> LoadTransposed(const std::string& name, int64_t rows, int64_t cols,
                                        kernels::WeightFormat format) const;
  // A [n] tensor as f32.
  absl::StatusOr<std::vector<float>> LoadVector(const std::string& name, int64_t n) const;
  // Several [n_i] vectors concatenated.
  absl::StatusOr<std::vector<float>> LoadConcatenated(const std::vector<std::string>& names,
                                                      const std::vector<int64_t>& sizes) const;
  bool Contains(const std::string& name) const { return store_.Contains(name); }
  // The stored dtype of `name` (kOther when absent).
  DType StoredDType(const std::string& name) const;

 private:
  // Converts rows of `info` into `dst` from row `dst_first` on.
  absl::Status ConvertRows(const TensorInfo& info, int64_t rows, int64_t cols, Weight* dst,
                           int64_t dst_first) const;

  const TensorStore& store_;
};

// The weight storage format of a stored float dtype (f32, f16, bf16).
absl::StatusOr<kernels::WeightFormat> FormatOfDType(DType dtype);

}  // namespace ropewire::model
