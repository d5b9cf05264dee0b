#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "kernels/weight_format.h"
#include "model/json_reader.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {
namespace {

// A header larger than this is not a real checkpoint; refuse rather than allocate.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeEntry {
  const char* name;
  DType dtype;
  int bytes;
};
constexpr DTypeEntry kDTypes[] = {
    {"F32", DType::kF32, 4},   {"F16", DType::kF16, 2}, {"BF16", DType::kBF16, 2},
    {"F64", DType::kF64, 8},   {"I64", DType::kI64, 8}, {"I32", DType::kI32, 4},
    {"I16", DType::kI16, 2},   {"I8", DType::kI8, 1},   {"U8", DType::kU8, 1},
    {"BOOL", DType::kBool, 1},
};

const DTypeEntry* LookupDType(const std::string& name) {
  for (const auto& entry : kDTypes) {
    if (name == entry.name) return &entry;
  }
  return nullptr;
}

absl::Status ParseTensorEntry(const std::string& path, const std::string& name,
                              const nlohmann::json& entry, const uint8_t* data, uint64_t data_size,
                              TensorInfo* info) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\": ", what));
  };
  if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
      !entry.contains("shape") || !entry["shape"].is_array() || !entry.contains("data_offsets") ||
      !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2) {
    return bad("malformed header entry (needs dtype, shape, data_offsets)");
  }
  info->name = name;
  info->file = path;
  info->dtype_name = entry["dtype"].get<std::string>();
  const DTypeEntry* dtype = LookupDType(info->dtype_name);
  if (dtype == nullptr) return bad(absl::StrCat("unknown dtype ", info->dtype_name));
  info->dtype = dtype->dtype;
  for (const auto& dim : entry["shape"]) {
    if (!dim.is_number_unsigned()) return bad("shape must hold non-negative integers");
    info->shape.push_back(dim.get<int64_t>());
  }
  const auto& offsets = entry["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
    return bad("data_offsets must be non-negative integers");
  }
  const uint64_t begin = offsets[0].get<uint64_t>();
  const uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end) return bad("data_offsets are reversed");
  if (end > data_size) {
    return bad(absl::StrCat("data ends at byte ", end, " of the data section but the file holds ",
                            data_size, " (truncated file?)"));
  }
  info->num_bytes = static_cast<int64_t>(end - begin);
  if (info->NumElements() * dtype->bytes != info->num_bytes) {
    return bad(absl::StrCat("shape ", ShapeString(info->shape), " of ", info->dtype_name, " needs ",
                            info->NumElements() * dtype->bytes, " bytes but has ",
                            info->num_bytes));
  }
  info->data = data + begin;
  return absl::OkStatus();
}

}  // namespace

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status ConvertToF32(DType dtype, const uint8_t* src, int64_t count, float* dst) {
  switch (dtype) {
    case DType::kF32: std::memcpy(dst, src, sizeof(float) * count); return absl::OkStatus();
    case DType::kF16:
      kernels::DequantizeRow(kernels::WeightFormat::kF16, src, count, dst);
      return absl::OkStatus();
    case DType::kBF16:
      kernels::DequantizeRow(kernels::WeightFormat::kBF16, src, count, dst);
      return absl::OkStatus();
    default: return absl::InvalidArgumentError("not a floating-point dtype (F32, F16 or BF16)");
  }
}

void ReleaseMappedPages(const void* data, int64_t bytes) {
  // Only whole pages inside the range: neighbouring tensors may share its first and last page.
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + uintptr_t(bytes)) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

absl::StatusOr<const TensorInfo*> TensorStore::FindShaped(const std::string& name,
                                                          const std::vector<int64_t>& shape) const {
  ASSIGN_OR_RETURN(const TensorInfo* info, Find(name));
  if (info->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(info->file, ": tensor \"", name, "\" has shape ",
                                                   ShapeString(info->shape), ", expected ",
                                                   ShapeString(shape)));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat(path, ": cannot stat"));
  }
  file->mapping_size_ = static_cast<size_t>(st.st_size);
  if (file->mapping_size_ < 8) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": file of ", st.st_size,
                                                   " bytes is too short for a safetensors header"));
  }
  void* mapping = ::mmap(nullptr, file->mapping_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrCat(path, ": mmap failed: ", std::strerror(errno)));
  }
  file->mapping_ = mapping;
  RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

absl::Status SafetensorsFile::ParseHeader() {
  const auto* bytes = static_cast<const uint8_t*>(mapping_);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian u64, as x86-64 and aarch64 store it
  if (header_size > kMaxHeaderBytes || header_size > mapping_size_ - 8) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": header claims ", header_size,
                                                   " bytes but the file holds ", mapping_size_,
                                                   " (truncated or not a safetensors file)"));
  }
  const std::string header(reinterpret_cast<const char*>(bytes + 8), header_size);
  nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": header is not valid JSON"));
  }
  const uint8_t* data = bytes + 8 + header_size;
  const uint64_t data_size = mapping_size_ - 8 - header_size;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") continue;
    TensorInfo info;
    RETURN_IF_ERROR(ParseTensorEntry(path_, name, entry, data, data_size, &info));
    tensors_.emplace(name, std::move(info));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TensorStore>> TensorStore::Open(const std::string& dir) {
  auto store = std::make_unique<TensorStore>();
  store->dir_ = dir;
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> files;
  if (std::filesystem::exists(index_path)) {
    nlohmann::json index;
    RETURN_IF_ERROR(ReadJsonFile(index_path, &index));
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": missing \"weight_map\" object"));
    }
    std::set<std::string> shard_names;
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": weight_map entry for \"", tensor, "\" is not a file name"));
      }
      shard_names.insert(shard.get<std::string>());
    }
    for (const auto& shard : shard_names) files.push_back(dir + "/" + shard);
  } else if (std::filesystem::exists(single)) {
    files.push_back(single);
  } else {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no model.safetensors or model.safetensors.index.json in the model directory"));
  }
  for (const auto& path : files) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const auto& [name, info] : file->tensors()) {
      if (!store->index_.emplace(name, &info).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor \"", name, "\" also appears in another shard"));
      }
    }
    store->files_.push_back(std::move(file));
  }
  return store;
}

absl::StatusOr<const TensorInfo*> TensorStore::Find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat(dir_, ": checkpoint has no tensor \"", name, "\""));
  }
  return it->second;
}

std::vector<std::string> TensorStore::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : index_) names.push_back(name);
  return names;
}

absl::Status TensorStore::ReadF32(const std::string& name, const std::vector<int64_t>& shape,
                                  float* out) const {
  ASSIGN_OR_RETURN(const TensorInfo* info, FindShaped(name, shape));
  absl::Status status = ConvertToF32(info->dtype, info->data, info->NumElements(), out);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(info->file, ": tensor \"", name, "\" has dtype ",
                                                   info->dtype_name, ": ", status.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> TensorStore::ReadF32(const std::string& name,
                                                        const std::vector<int64_t>& shape) const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::vector<float> out(count);
  RETURN_IF_ERROR(ReadF32(name, shape, out.data()));
  return out;
}

}  // namespace ropewire::model
