// Writes GGUF files: metadata of every value type and tensors placed at the alignment, or, for
// tests of malformed files, header fields and offsets exactly as given.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gguf/types.h"

namespace ropewire::gguf::testing {

class GgufWriter {
 public:
  void set_version(uint32_t version) { version_ = version; }
  // Alignment of the data section and of each tensor; written as general.alignment when it
  // differs from the default 32 (or always, with `write_key`).
  void SetAlignment(uint32_t alignment, bool write_key = false);

  void AddUint8(std::string_view key, uint8_t value);
  void AddInt8(std::string_view key, int8_t value);
  void AddUint16(std::string_view key, uint16_t value);
  void AddInt16(std::string_view key, int16_t value);
  void AddUint32(std::string_view key, uint32_t value);
  void AddInt32(std::string_view key, int32_t value);
  void AddUint64(std::string_view key, uint64_t value);
  void AddInt64(std::string_view key, int64_t value);
  void AddFloat32(std::string_view key, float value);
  void AddFloat64(std::string_view key, double value);
  void AddBool(std::string_view key, bool value);
  void AddString(std::string_view key, std::string_view value);
  void AddStringArray(std::string_view key, std::span<const std::string> values);
  void AddInt32Array(std::string_view key, std::span<const int32_t> values);
  void AddFloat32Array(std::string_view key, std::span<const float> values);
  // A key with `type_id` followed by `value_bytes` verbatim (nested arrays, hostile values).
  void AddRaw(std::string_view key, uint32_t type_id, std::span<const uint8_t> value_bytes);

  // A tensor whose `data` goes into the data section at the next aligned offset. `dims` in GGUF
  // order (dims[0] innermost).
  void AddTensor(std::string_view name, TensorType type, std::vector<int64_t> dims,
                 std::span<const uint8_t> data);
  void AddF32Tensor(std::string_view name, std::vector<int64_t> dims, std::span<const float> data);
  // A tensor info with a raw type id and offset and no data of its own (malformed files).
  void AddTensorInfo(std::string_view name, uint32_t type_id, std::vector<int64_t> dims,
                     uint64_t offset);
  // Bytes appended to the data section as they are (after any tensor data).
  void AppendData(std::span<const uint8_t> bytes);

  // Overrides the counts written in the header (malformed files).
  void OverrideCounts(uint64_t tensor_count, uint64_t kv_count);

  std::vector<uint8_t> Bytes() const;
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct TensorEntry {
    std::string name;
    uint32_t type_id;
    std::vector<int64_t> dims;
    uint64_t offset;
  };
  void Key(std::string_view key, uint32_t type_id);

  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  std::vector<uint8_t> metadata_;
  uint64_t kv_count_ = 0;
  std::vector<TensorEntry> tensors_;
  std::vector<uint8_t> data_;
  bool override_counts_ = false;
  uint64_t tensor_count_override_ = 0;
  uint64_t kv_count_override_ = 0;
};

// A scalar reference for tests: the f32 values of `count` values stored as F32, F16, Q8_0,
// Q4_0 or Q4_1 (ggml's dequantize_row_* written out plainly); other types are an error.
absl::StatusOr<std::vector<float>> DequantizeForTest(TensorType type, const uint8_t* data,
                                                     int64_t count);

}  // namespace ropewire::gguf::testing
