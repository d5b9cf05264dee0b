#include "model/testing/safetensors_writer.h"

#include "kernels/float16.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {
namespace {

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    default: return "F32";
  }
}

int DTypeBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

void AppendValues(const TensorToWrite& t, std::string* out) {
  for (float v : t.values) {
    if (t.dtype == DType::kF32) {
      out->append(reinterpret_cast<const char*>(&v), 4);
    } else {
      const uint16_t h =
          t.dtype == DType::kBF16 ? kernels::FloatToBf16(v) : kernels::FloatToHalf(v);
      out->append(reinterpret_cast<const char*>(&h), 2);
    }
  }
}

}  // namespace

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  int64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t count = 1;
    for (int64_t d : t.shape) count *= d;
    if (count != static_cast<int64_t>(t.values.size())) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", t.name, ": shape ",
                                                     ShapeString(t.shape), " does not match ",
                                                     t.values.size(), " values"));
    }
    const int64_t bytes = count * DTypeBytes(t.dtype);
    header[t.name] = {{"dtype", DTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat(path, ": cannot open for writing"));
  const uint64_t header_size = text.size();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::string payload;
  for (const auto& t : tensors) {
    payload.clear();
    AppendValues(t, &payload);
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  }
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace ropewire::model
