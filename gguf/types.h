// The GGUF format's two type vocabularies: metadata value types and ggml tensor types (every id
// ggml has defined, so a file with a type ropewire cannot compute with is refused by name, not
// as an unknown number).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ropewire::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "UINT32", "STRING", ...; nullopt for an id the format does not define.
std::optional<std::string_view> ValueTypeName(uint32_t id);
// Bytes of one scalar value in the file (0 for STRING and ARRAY, whose size varies).
int ScalarValueBytes(ValueType type);

// ggml_type ids. Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38
// (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8) were defined once and removed; files may not use them.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  kNVFP4 = 40,
  kQ1_0 = 41,
};

// Storage of one tensor type: `block_values` values take `block_bytes` bytes; a row (ne[0]
// values) is a whole number of blocks.
struct TensorTypeTraits {
  TensorType type;
  std::string_view name;  // as ggml names it: "F32", "Q4_1", "Q6_K", ...
  int block_values;
  int block_bytes;
};

// The traits of a ggml type id; nullopt for an id that is not (or no longer) defined.
std::optional<TensorTypeTraits> FindTensorType(uint32_t id);
TensorTypeTraits Traits(TensorType type);
// A readable name for any id, defined or not: "Q4_1", "Q4_2 (removed)", "an unknown type".
std::string_view TensorTypeName(uint32_t id);

}  // namespace ropewire::gguf
