// Loading named weights out of a TensorStore into owned f32 buffers, including fused layouts
// (several projections stacked into one matrix, multiplied in one GEMM).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/huge_page_allocator.h"
#include "model/safetensors.h"

namespace ropewire::model {

// A row-major f32 matrix (or vector when cols == 1 ... stored as [rows, cols]).
// Weight storage: huge-page advised (base/huge_page_allocator.h says why).
using WeightVector = std::vector<float, HugePageAllocator<float>>;

struct Matrix {
  WeightVector data;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* ptr() const { return data.data(); }
};

class WeightLoader {
 public:
  explicit WeightLoader(const TensorStore& store) : store_(store) {}

  // A [rows, cols] tensor.
  absl::StatusOr<Matrix> Load(const std::string& name, int64_t rows, int64_t cols) const;
  // A [n] tensor.
  absl::StatusOr<std::vector<float>> LoadVector(const std::string& name, int64_t n) const;
  // Several [rows_i, cols] tensors stacked vertically into one [Σ rows_i, cols] matrix.
  absl::StatusOr<Matrix> LoadStacked(const std::vector<std::string>& names,
                                     const std::vector<int64_t>& rows, int64_t cols) const;
  // Several [n_i] vectors concatenated.
  absl::StatusOr<std::vector<float>> LoadConcatenated(const std::vector<std::string>& names,
                                                      const std::vector<int64_t>& sizes) const;
  bool Contains(const std::string& name) const { return store_.Contains(name); }

 private:
  const TensorStore& store_;
};

}  // namespace ropewire::model
