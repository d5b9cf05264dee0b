#include "gguf/testing/gguf_writer.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "gguf/str_cat.h"

namespace ropewire::gguf::testing {
namespace {

template <typename T>
void Put(std::vector<uint8_t>& out, T value) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

void PutString(std::vector<uint8_t>& out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void PadTo(std::vector<uint8_t>& out, uint64_t alignment) {
  while (out.size() % alignment != 0) out.push_back(0);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude =
        mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    magnitude = std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
  }
  return sign ? -magnitude : magnitude;
}

uint16_t LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

}  // namespace

void GgufWriter::SetAlignment(uint32_t alignment, bool write_key) {
  alignment_ = alignment;
  if (write_key || alignment != 32) AddUint32("general.alignment", alignment);
}

void GgufWriter::Key(std::string_view key, uint32_t type_id) {
  PutString(metadata_, key);
  Put<uint32_t>(metadata_, type_id);
  ++kv_count_;
}

#define ROPEWIRE_GGUF_SCALAR(Name, T, type)                   \
  void GgufWriter::Add##Name(std::string_view key, T value) { \
    Key(key, static_cast<uint32_t>(ValueType::type));         \
    Put<T>(metadata_, value);                                 \
  }
ROPEWIRE_GGUF_SCALAR(Uint8, uint8_t, kUint8)
ROPEWIRE_GGUF_SCALAR(Int8, int8_t, kInt8)
ROPEWIRE_GGUF_SCALAR(Uint16, uint16_t, kUint16)
ROPEWIRE_GGUF_SCALAR(Int16, int16_t, kInt16)
ROPEWIRE_GGUF_SCALAR(Uint32, uint32_t, kUint32)
ROPEWIRE_GGUF_SCALAR(Int32, int32_t, kInt32)
ROPEWIRE_GGUF_SCALAR(Uint64, uint64_t, kUint64)
ROPEWIRE_GGUF_SCALAR(Int64, int64_t, kInt64)
ROPEWIRE_GGUF_SCALAR(Float32, float, kFloat32)
ROPEWIRE_GGUF_SCALAR(Float64, double, kFloat64)
#undef ROPEWIRE_GGUF_SCALAR

void GgufWriter::AddBool(std::string_view key, bool value) {
  Key(key, static_cast<uint32_t>(ValueType::kBool));
  Put<uint8_t>(metadata_, value ? 1 : 0);
}

void GgufWriter::AddString(std::string_view key, std::string_view value) {
  Key(key, static_cast<uint32_t>(ValueType::kString));
  PutString(metadata_, value);
}

void GgufWriter::AddStringArray(std::string_view key, std::span<const std::string> values) {
  Key(key, static_cast<uint32_t>(ValueType::kArray));
  Put<uint32_t>(metadata_, static_cast<uint32_t>(ValueType::kString));
  Put<uint64_t>(metadata_, values.size());
  for (const std::string& value : values) PutString(metadata_, value);
}

void GgufWriter::AddInt32Array(std::string_view key, std::span<const int32_t> values) {
  Key(key, static_cast<uint32_t>(ValueType::kArray));
  Put<uint32_t>(metadata_, static_cast<uint32_t>(ValueType::kInt32));
  Put<uint64_t>(metadata_, values.size());
  for (int32_t value : values) Put<int32_t>(metadata_, value);
}

void GgufWriter::AddFloat32Array(std::string_view key, std::span<const float> values) {
  Key(key, static_cast<uint32_t>(ValueType::kArray));
  Put<uint32_t>(metadata_, static_cast<uint32_t>(ValueType::kFloat32));
  Put<uint64_t>(metadata_, values.size());
  for (float value : values) Put<float>(metadata_, value);
}

void GgufWriter::AddRaw(std::string_view key, uint32_t type_id,
                        std::span<const uint8_t> value_bytes) {
  Key(key, type_id);
  metadata_.insert(metadata_.end(), value_bytes.begin(), value_bytes.end());
}

void GgufWriter::AddTensor(std::string_view name, TensorType type, std::vector<int64_t> dims,
                           std::span<const uint8_t> data) {
  PadTo(data_, alignment_);
  tensors_.push_back({std::string(name), static_cast<uint32_t>(type), std::move(dims),
                      static_cast<uint64_t>(data_.size())});
  data_.insert(data_.end(), data.begin(), data.end());
}

void GgufWriter::AddF32Tensor(std::string_view name, std::vector<int64_t> dims,
                              std::span<const float> data) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  AddTensor(name, TensorType::kF32, std::move(dims), {bytes, data.size() * sizeof(float)});
}

void GgufWriter::AddTensorInfo(std::string_view name, uint32_t type_id, std::vector<int64_t> dims,
                               uint64_t offset) {
  tensors_.push_back({std::string(name), type_id, std::move(dims), offset});
}

void GgufWriter::AppendData(std::span<const uint8_t> bytes) {
  data_.insert(data_.end(), bytes.begin(), bytes.end());
}

void GgufWriter::OverrideCounts(uint64_t tensor_count, uint64_t kv_count) {
  override_counts_ = true;
  tensor_count_override_ = tensor_count;
  kv_count_override_ = kv_count;
}

std::vector<uint8_t> GgufWriter::Bytes() const {
  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  Put<uint32_t>(out, version_);
  Put<uint64_t>(out, override_counts_ ? tensor_count_override_ : tensors_.size());
  Put<uint64_t>(out, override_counts_ ? kv_count_override_ : kv_count_);
  out.insert(out.end(), metadata_.begin(), metadata_.end());
  for (const TensorEntry& t : tensors_) {
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<uint64_t>(out, static_cast<uint64_t>(d));
    Put<uint32_t>(out, t.type_id);
    Put<uint64_t>(out, t.offset);
  }
  if (!data_.empty()) PadTo(out, alignment_);
  out.insert(out.end(), data_.begin(), data_.end());
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  const std::vector<uint8_t> bytes = Bytes();
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) return absl::InternalError(Cat(path, ": cannot write"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> DequantizeForTest(TensorType type, const uint8_t* data,
                                                     int64_t count) {
  std::vector<float> out(count);
  const TensorTypeTraits traits = Traits(type);
  if (count % traits.block_values != 0) return absl::InvalidArgumentError("partial block");
  for (int64_t block = 0; block < count / traits.block_values; ++block) {
    const uint8_t* b = data + block * traits.block_bytes;
    float* o = out.data() + block * traits.block_values;
    switch (type) {
      case TensorType::kF32: std::memcpy(o, b, 4); break;
      case TensorType::kF16: o[0] = HalfToFloat(LoadHalf(b)); break;
      case TensorType::kQ8_0:
        for (int j = 0; j < 32; ++j)
          o[j] = HalfToFloat(LoadHalf(b)) * static_cast<int8_t>(b[2 + j]);
        break;
      case TensorType::kQ4_0:
        for (int j = 0; j < 16; ++j) {
          o[j] = HalfToFloat(LoadHalf(b)) * ((b[2 + j] & 0xF) - 8);
          o[j + 16] = HalfToFloat(LoadHalf(b)) * ((b[2 + j] >> 4) - 8);
        }
        break;
      case TensorType::kQ4_1:
        for (int j = 0; j < 16; ++j) {
          o[j] = HalfToFloat(LoadHalf(b)) * (b[4 + j] & 0xF) + HalfToFloat(LoadHalf(b + 2));
          o[j + 16] = HalfToFloat(LoadHalf(b)) * (b[4 + j] >> 4) + HalfToFloat(LoadHalf(b + 2));
        }
        break;
      default: return absl::UnimplementedError(Cat("no test dequantizer for ", traits.name));
    }
  }
  return out;
}

}  // namespace ropewire::gguf::testing
