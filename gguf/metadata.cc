#include "gguf/metadata.h"

#include <cstring>
#include <limits>

#include "base/status_macros.h"
#include "gguf/str_cat.h"

namespace ropewire::gguf {

bool MetadataValue::IsIntegerType(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64: return true;
    default: return false;
  }
}

bool MetadataValue::IsSignedType(ValueType type) {
  return type == ValueType::kInt8 || type == ValueType::kInt16 || type == ValueType::kInt32 ||
         type == ValueType::kInt64;
}

namespace {

template <typename T>
T Load(const uint8_t* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof(T));  // little-endian, as x86-64 and aarch64 store it
  return value;
}

}  // namespace

MetadataValue MetadataValue::Scalar(ValueType type, const uint8_t* bytes) {
  MetadataValue v;
  v.type_ = type;
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kBool: v.bits_ = Load<uint8_t>(bytes); break;
    case ValueType::kInt8: v.bits_ = static_cast<uint64_t>(int64_t{Load<int8_t>(bytes)}); break;
    case ValueType::kUint16: v.bits_ = Load<uint16_t>(bytes); break;
    case ValueType::kInt16: v.bits_ = static_cast<uint64_t>(int64_t{Load<int16_t>(bytes)}); break;
    case ValueType::kUint32: v.bits_ = Load<uint32_t>(bytes); break;
    case ValueType::kInt32: v.bits_ = static_cast<uint64_t>(int64_t{Load<int32_t>(bytes)}); break;
    case ValueType::kUint64: v.bits_ = Load<uint64_t>(bytes); break;
    case ValueType::kInt64: v.bits_ = static_cast<uint64_t>(Load<int64_t>(bytes)); break;
    case ValueType::kFloat32: v.real_ = Load<float>(bytes); break;
    case ValueType::kFloat64: v.real_ = Load<double>(bytes); break;
    case ValueType::kString:
    case ValueType::kArray: break;  // not scalars
  }
  return v;
}

MetadataValue MetadataValue::String(std::string_view value) {
  MetadataValue v;
  v.type_ = ValueType::kString;
  v.string_ = value;
  return v;
}

MetadataValue MetadataValue::ScalarArray(ValueType element_type, const uint8_t* bytes,
                                         size_t count) {
  MetadataValue v;
  v.type_ = ValueType::kArray;
  v.element_type_ = element_type;
  v.raw_ = bytes;
  v.count_ = count;
  return v;
}

MetadataValue MetadataValue::StringArray(std::vector<std::string_view> strings) {
  MetadataValue v;
  v.type_ = ValueType::kArray;
  v.element_type_ = ValueType::kString;
  v.count_ = strings.size();
  v.strings_ = std::move(strings);
  return v;
}

MetadataValue MetadataValue::NestedArray(std::vector<MetadataValue> arrays) {
  MetadataValue v;
  v.type_ = ValueType::kArray;
  v.element_type_ = ValueType::kArray;
  v.count_ = arrays.size();
  v.arrays_ = std::move(arrays);
  return v;
}

MetadataValue MetadataValue::element(size_t i) const {
  if (element_type_ == ValueType::kString) return String(strings_[i]);
  if (element_type_ == ValueType::kArray) return arrays_[i];
  return Scalar(element_type_, raw_ + i * ScalarValueBytes(element_type_));
}

std::string TypeDescription(const MetadataValue& value) {
  const std::string_view name = *ValueTypeName(static_cast<uint32_t>(value.type()));
  if (value.type() != ValueType::kArray) return std::string(name);
  return Cat(name, " of ", *ValueTypeName(static_cast<uint32_t>(value.element_type())));
}

std::string DescribeValue(const MetadataValue& value) {
  switch (value.type()) {
    case ValueType::kString: {
      constexpr size_t kShown = 80;
      const std::string_view s = value.as_string();
      if (s.size() <= kShown) return Cat("\"", s, "\"");
      return Cat("\"", s.substr(0, kShown), "...\" (", s.size(), " bytes)");
    }
    case ValueType::kArray:
      return Cat("[", value.size(), " x ",
                 *ValueTypeName(static_cast<uint32_t>(value.element_type())), "]");
    case ValueType::kBool: return value.as_bool() ? "true" : "false";
    case ValueType::kFloat32:
    case ValueType::kFloat64: return Cat(value.as_double());
    default:
      return MetadataValue::IsSignedType(value.type()) ? Cat(value.as_int64())
                                                       : Cat(value.as_uint64());
  }
}

bool Metadata::Insert(std::string key, MetadataValue value) {
  return entries_.emplace(std::move(key), std::move(value)).second;
}

const MetadataValue* Metadata::Find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

absl::Status Metadata::Error(std::string_view key, std::string_view what) const {
  return absl::InvalidArgumentError(Cat(source_, ": metadata key \"", key, "\" ", what));
}

absl::StatusOr<const MetadataValue*> Metadata::Required(std::string_view key) const {
  const MetadataValue* value = Find(key);
  if (value == nullptr) return Error(key, "is missing");
  return value;
}

absl::StatusOr<int64_t> Metadata::IntegerOf(std::string_view key,
                                            const MetadataValue& value) const {
  if (!value.is_integer()) {
    return Error(key, Cat("must be an integer, not ", TypeDescription(value)));
  }
  if (!MetadataValue::IsSignedType(value.type()) &&
      value.as_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Error(key, Cat("holds ", value.as_uint64(), ", too large"));
  }
  return value.as_int64();
}

absl::StatusOr<int64_t> Metadata::Integer(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* value, Required(key));
  return IntegerOf(key, *value);
}

absl::StatusOr<int64_t> Metadata::Integer(std::string_view key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return Integer(key);
}

absl::StatusOr<double> Metadata::Float(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* value, Required(key));
  if (value->is_float()) return value->as_double();
  if (value->is_integer()) {
    ASSIGN_OR_RETURN(int64_t integer, IntegerOf(key, *value));
    return static_cast<double>(integer);
  }
  return Error(key, Cat("must be a number, not ", TypeDescription(*value)));
}

absl::StatusOr<double> Metadata::Float(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return Float(key);
}

absl::StatusOr<bool> Metadata::Bool(std::string_view key, bool fallback) const {
  const MetadataValue* value = Find(key);
  if (value == nullptr) return fallback;
  if (value->type() != ValueType::kBool) {
    return Error(key, Cat("must be a BOOL, not ", TypeDescription(*value)));
  }
  return value->as_bool();
}

absl::StatusOr<std::string_view> Metadata::String(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* value, Required(key));
  if (value->type() != ValueType::kString) {
    return Error(key, Cat("must be a STRING, not ", TypeDescription(*value)));
  }
  return value->as_string();
}

absl::StatusOr<std::string_view> Metadata::String(std::string_view key,
                                                  std::string_view fallback) const {
  if (!Has(key)) return fallback;
  return String(key);
}

absl::StatusOr<const MetadataValue*> Metadata::RequiredArray(std::string_view key,
                                                             std::string_view wanted) const {
  ASSIGN_OR_RETURN(const MetadataValue* value, Required(key));
  if (value->type() != ValueType::kArray) {
    return Error(key, Cat("must be an ARRAY of ", wanted, ", not ", TypeDescription(*value)));
  }
  return value;
}

absl::StatusOr<std::vector<std::string_view>> Metadata::StringArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* array, RequiredArray(key, "STRING"));
  if (array->element_type() != ValueType::kString) {
    return Error(key, Cat("must be an ARRAY of STRING, not ", TypeDescription(*array)));
  }
  std::vector<std::string_view> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) out.push_back(array->element(i).as_string());
  return out;
}

absl::StatusOr<std::vector<int64_t>> Metadata::IntegerArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* array, RequiredArray(key, "integers"));
  std::vector<int64_t> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    ASSIGN_OR_RETURN(int64_t value, IntegerOf(key, array->element(i)));
    out.push_back(value);
  }
  return out;
}

absl::StatusOr<std::vector<float>> Metadata::FloatArray(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* array, RequiredArray(key, "FLOAT32"));
  if (array->element_type() != ValueType::kFloat32 &&
      array->element_type() != ValueType::kFloat64) {
    return Error(key, Cat("must be an ARRAY of FLOAT32, not ", TypeDescription(*array)));
  }
  std::vector<float> out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    out.push_back(static_cast<float>(array->element(i).as_double()));
  }
  return out;
}

absl::StatusOr<size_t> Metadata::ArrayLength(std::string_view key) const {
  ASSIGN_OR_RETURN(const MetadataValue* array, RequiredArray(key, "values"));
  return array->size();
}

}  // namespace ropewire::gguf
