// Memory-mapped safetensors checkpoints, single file or sharded through
// model.safetensors.index.json. Tensors are converted to f32 on request (f32, f16, bf16).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ropewire::model {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool, kOther };

struct TensorInfo {
  std::string name;
  DType dtype = DType::kOther;
  std::string dtype_name;  // as written in the header, e.g. "BF16"
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping
  int64_t num_bytes = 0;
  std::string file;  // path of the file holding it, for messages

  int64_t NumElements() const;
};

// One memory-mapped .safetensors file with its validated header.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  absl::Status ParseHeader();

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

// All tensors of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json.
class TensorStore {
 public:
  static absl::StatusOr<std::unique_ptr<TensorStore>> Open(const std::string& dir);

  bool Contains(const std::string& name) const { return index_.count(name) > 0; }
  absl::StatusOr<const TensorInfo*> Find(const std::string& name) const;
  // Find, and check the tensor's shape is `shape`.
  absl::StatusOr<const TensorInfo*> FindShaped(const std::string& name,
                                               const std::vector<int64_t>& shape) const;
  std::vector<std::string> Names() const;

  // Copies tensor `name` converted to f32 into `out`, after checking its shape is `shape`.
  absl::Status ReadF32(const std::string& name, const std::vector<int64_t>& shape,
                       float* out) const;
  absl::StatusOr<std::vector<float>> ReadF32(const std::string& name,
                                             const std::vector<int64_t>& shape) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
  std::string dir_;
};

// Tells the kernel the mapped pages of [data, data + bytes) are no longer needed: they leave this
// process's resident memory (and are read from the file again if touched). Loading calls it once
// a tensor is converted, so a checkpoint never sits in memory twice.
void ReleaseMappedPages(const void* data, int64_t bytes);

// Converts `count` values of a supported float dtype to f32.
absl::Status ConvertToF32(DType dtype, const uint8_t* src, int64_t count, float* dst);

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace ropewire::model
