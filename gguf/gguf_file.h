// A GGUF file (versions 2 and 3): header, metadata, tensor infos and the tensor data, memory-mapped
// and never copied. Every malformed file is a load error that names the file and what is wrong
// (bad magic, an unsupported version, a truncated header, metadata or tensor data, an unknown
// value or tensor type, a misaligned offset, a tensor past the end of the file, duplicate keys or
// tensor names, counts the file cannot hold). Counts are checked against the bytes left before
// anything is allocated, so a hostile header cannot make the reader allocate more than a small
// multiple of the file's size; Parse() reads from bytes, so the reader can be fuzzed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include "absl/status/statusor.h"
#include "gguf/metadata.h"
#include "gguf/types.h"

namespace ropewire::gguf {

class ByteReader;  // gguf_file.cc

inline constexpr uint32_t kDefaultAlignment = 32;  // when general.alignment is absent
inline constexpr int kMaxDims = 4;                 // ggml's GGML_MAX_DIMS

struct TensorInfo {
  std::string name;
  TensorType type = TensorType::kF32;
  // GGUF order: dims[0] (ne0) is the innermost, contiguous dimension. A weight matrix of
  // `out` rows of `in` values is {in, out}: dims[0] is the row length.
  std::vector<int64_t> dims;
  uint64_t offset = 0;  // from the start of the data section
  const uint8_t* data = nullptr;
  uint64_t num_bytes = 0;

  int64_t NumElements() const;
  int64_t row_length() const { return dims.empty() ? 1 : dims[0]; }
  int64_t NumRows() const;    // product of dims[1..]
  uint64_t RowBytes() const;  // bytes of one row of row_length() values
  // "[576, 49152]" (GGUF order).
  std::string DimsString() const;
};

class GgufFile {
 public:
  // Memory-maps and parses `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses a copy of `bytes`; `source` names them in errors.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(std::span<const uint8_t> bytes,
                                                         std::string source);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& source() const { return source_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // where the data section begins
  uint64_t size() const { return size_; }                // of the whole file
  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in file order

  const TensorInfo* FindTensor(std::string_view name) const;
  // The tensor, or NotFound naming the file and the tensor.
  absl::StatusOr<const TensorInfo*> Tensor(std::string_view name) const;
  // An error naming the first tensor whose type is not among `supported`, and its type.
  absl::Status CheckTensorTypes(std::span<const TensorType> supported,
                                std::string_view purpose) const;

 private:
  GgufFile() = default;
  absl::Status ParseAll();
  absl::Status ParseHeader(ByteReader& reader, uint64_t& tensor_count, uint64_t& kv_count);
  absl::Status ParseMetadata(ByteReader& reader, uint64_t kv_count);
  absl::Status ParseTensorInfos(ByteReader& reader, uint64_t tensor_count);
  absl::Status ParseTensorInfo(ByteReader& reader, uint64_t index, TensorInfo& info);
  absl::Status ReadAlignment();
  absl::Status PlaceTensors();

  std::string source_;
  const uint8_t* bytes_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;     // set when memory-mapped
  std::vector<uint8_t> owned_;  // set when parsed from a copy
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  Metadata metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace ropewire::gguf
