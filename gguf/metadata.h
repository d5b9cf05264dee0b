// GGUF metadata: the key-value section of a file, with typed accessors whose errors name the
// file and the key ("model.gguf: metadata key \"llama.block_count\" is missing").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gguf/types.h"

namespace ropewire::gguf {

// One metadata value. Strings and the elements of numeric arrays are views into the file's
// bytes, valid while the GgufFile lives; so a file's metadata costs little more memory than its
// bytes, however hostile its counts.
class MetadataValue {
 public:
  ValueType type() const { return type_; }
  bool is_integer() const { return IsIntegerType(type_); }
  bool is_float() const { return type_ == ValueType::kFloat32 || type_ == ValueType::kFloat64; }

  // Scalars, read as the widest type of their kind.
  uint64_t as_uint64() const { return bits_; }                      // unsigned integers
  int64_t as_int64() const { return static_cast<int64_t>(bits_); }  // signed integers
  double as_double() const { return real_; }                        // floats
  bool as_bool() const { return bits_ != 0; }
  std::string_view as_string() const { return string_; }

  // Arrays: element type, count and elements (a scalar, string or array value each).
  ValueType element_type() const { return element_type_; }
  size_t size() const { return count_; }
  MetadataValue element(size_t i) const;

  static bool IsIntegerType(ValueType type);
  static bool IsSignedType(ValueType type);
  // A scalar of `type` decoded from its little-endian bytes.
  static MetadataValue Scalar(ValueType type, const uint8_t* bytes);
  static MetadataValue String(std::string_view value);
  // An array of scalars stored as `count` consecutive little-endian values at `bytes`.
  static MetadataValue ScalarArray(ValueType element_type, const uint8_t* bytes, size_t count);
  static MetadataValue StringArray(std::vector<std::string_view> strings);
  static MetadataValue NestedArray(std::vector<MetadataValue> arrays);

 private:
  ValueType type_ = ValueType::kUint8;
  ValueType element_type_ = ValueType::kUint8;
  uint64_t bits_ = 0;
  double real_ = 0;
  std::string_view string_;
  size_t count_ = 0;
  const uint8_t* raw_ = nullptr;  // scalar elements
  std::vector<std::string_view> strings_;
  std::vector<MetadataValue> arrays_;
};

// A readable rendering for messages and --info: scalars as written, arrays by type and count.
std::string DescribeValue(const MetadataValue& value);
// "UINT32", "ARRAY of STRING", ...
std::string TypeDescription(const MetadataValue& value);

class Metadata {
 public:
  explicit Metadata(std::string source = "") : source_(std::move(source)) {}

  // False when the key was already present.
  bool Insert(std::string key, MetadataValue value);
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  const MetadataValue* Find(std::string_view key) const;
  const std::map<std::string, MetadataValue, std::less<>>& entries() const { return entries_; }
  const std::string& source() const { return source_; }

  // Typed reads. Integers of any width and signedness are accepted where they fit; floats of
  // either width. A missing key or a value of another type is an error naming the key.
  absl::StatusOr<int64_t> Integer(std::string_view key) const;
  absl::StatusOr<int64_t> Integer(std::string_view key, int64_t fallback) const;
  absl::StatusOr<double> Float(std::string_view key) const;
  absl::StatusOr<double> Float(std::string_view key, double fallback) const;
  absl::StatusOr<bool> Bool(std::string_view key, bool fallback) const;
  absl::StatusOr<std::string_view> String(std::string_view key) const;
  absl::StatusOr<std::string_view> String(std::string_view key, std::string_view fallback) const;
  // Arrays of one element type.
  absl::StatusOr<std::vector<std::string_view>> StringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> IntegerArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> FloatArray(std::string_view key) const;
  // The number of elements of an array key.
  absl::StatusOr<size_t> ArrayLength(std::string_view key) const;

  // "<source>: metadata key \"<key>\" <what>", as InvalidArgument.
  absl::Status Error(std::string_view key, std::string_view what) const;

 private:
  absl::StatusOr<const MetadataValue*> Required(std::string_view key) const;
  absl::StatusOr<const MetadataValue*> RequiredArray(std::string_view key,
                                                     std::string_view wanted) const;
  absl::StatusOr<int64_t> IntegerOf(std::string_view key, const MetadataValue& value) const;

  std::string source_;
  std::map<std::string, MetadataValue, std::less<>> entries_;
};

}  // namespace ropewire::gguf
