#include "model/weights.h"

#include "base/status_macros.h"

namespace ropewire::model {

absl::StatusOr<Matrix> WeightLoader::Load(const std::string& name, int64_t rows,
                                          int64_t cols) const {
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  RETURN_IF_ERROR(store_.ReadF32(name, {rows, cols}, m.data.data()));
  return m;
}

absl::StatusOr<std::vector<float>> WeightLoader::LoadVector(const std::string& name,
                                                            int64_t n) const {
  return store_.ReadF32(name, {n});
}

absl::StatusOr<Matrix> WeightLoader::LoadStacked(const std::vector<std::string>& names,
                                                 const std::vector<int64_t>& rows,
                                                 int64_t cols) const {
  Matrix m;
  m.cols = cols;
  for (int64_t r : rows) m.rows += r;
  m.data.resize(m.rows * cols);
  float* dst = m.data.data();
  for (size_t i = 0; i < names.size(); ++i) {
    RETURN_IF_ERROR(store_.ReadF32(names[i], {rows[i], cols}, dst));
    dst += rows[i] * cols;
  }
  return m;
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
