#include "gguf/types.h"

#include <array>

namespace ropewire::gguf {
namespace {

constexpr std::array<std::string_view, 13> kValueTypeNames = {
    "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",   "FLOAT32",
    "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64",
};

// Block sizes as ggml defines them (and the `gguf` Python package's GGML_QUANT_SIZES).
constexpr TensorTypeTraits kTensorTypes[] = {
    {TensorType::kF32, "F32", 1, 4},
    {TensorType::kF16, "F16", 1, 2},
    {TensorType::kQ4_0, "Q4_0", 32, 18},
    {TensorType::kQ4_1, "Q4_1", 32, 20},
    {TensorType::kQ5_0, "Q5_0", 32, 22},
    {TensorType::kQ5_1, "Q5_1", 32, 24},
    {TensorType::kQ8_0, "Q8_0", 32, 34},
    {TensorType::kQ8_1, "Q8_1", 32, 40},
    {TensorType::kQ2_K, "Q2_K", 256, 84},
    {TensorType::kQ3_K, "Q3_K", 256, 110},
    {TensorType::kQ4_K, "Q4_K", 256, 144},
    {TensorType::kQ5_K, "Q5_K", 256, 176},
    {TensorType::kQ6_K, "Q6_K", 256, 210},
    {TensorType::kQ8_K, "Q8_K", 256, 292},
    {TensorType::kIQ2_XXS, "IQ2_XXS", 256, 66},
    {TensorType::kIQ2_XS, "IQ2_XS", 256, 74},
    {TensorType::kIQ3_XXS, "IQ3_XXS", 256, 98},
    {TensorType::kIQ1_S, "IQ1_S", 256, 50},
    {TensorType::kIQ4_NL, "IQ4_NL", 32, 18},
    {TensorType::kIQ3_S, "IQ3_S", 256, 110},
    {TensorType::kIQ2_S, "IQ2_S", 256, 82},
    {TensorType::kIQ4_XS, "IQ4_XS", 256, 136},
    {TensorType::kI8, "I8", 1, 1},
    {TensorType::kI16, "I16", 1, 2},
    {TensorType::kI32, "I32", 1, 4},
    {TensorType::kI64, "I64", 1, 8},
    {TensorType::kF64, "F64", 1, 8},
    {TensorType::kIQ1_M, "IQ1_M", 256, 56},
    {TensorType::kBF16, "BF16", 1, 2},
    {TensorType::kTQ1_0, "TQ1_0", 256, 54},
    {TensorType::kTQ2_0, "TQ2_0", 256, 66},
    {TensorType::kMXFP4, "MXFP4", 32, 17},
    {TensorType::kNVFP4, "NVFP4", 64, 36},
    {TensorType::kQ1_0, "Q1_0", 128, 18},
};

struct RemovedType {
  uint32_t id;
  std::string_view name;
};
constexpr RemovedType kRemovedTypes[] = {
    {4, "Q4_2 (removed)"},        {5, "Q4_3 (removed)"},        {31, "Q4_0_4_4 (removed)"},
    {32, "Q4_0_4_8 (removed)"},   {33, "Q4_0_8_8 (removed)"},   {36, "IQ4_NL_4_4 (removed)"},
    {37, "IQ4_NL_4_8 (removed)"}, {38, "IQ4_NL_8_8 (removed)"},
};

}  // namespace

std::optional<std::string_view> ValueTypeName(uint32_t id) {
  if (id >= kValueTypeNames.size()) return std::nullopt;
  return kValueTypeNames[id];
}

int ScalarValueBytes(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    case ValueType::kString:
    case ValueType::kArray: return 0;
  }
  return 0;
}

std::optional<TensorTypeTraits> FindTensorType(uint32_t id) {
  for (const TensorTypeTraits& traits : kTensorTypes) {
    if (static_cast<uint32_t>(traits.type) == id) return traits;
  }
  return std::nullopt;
}

TensorTypeTraits Traits(TensorType type) { return *FindTensorType(static_cast<uint32_t>(type)); }

std::string_view TensorTypeName(uint32_t id) {
  if (auto traits = FindTensorType(id)) return traits->name;
  for (const RemovedType& removed : kRemovedTypes) {
    if (removed.id == id) return removed.name;
  }
  return "an unknown type";
}

}  // namespace ropewire::gguf
