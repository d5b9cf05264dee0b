#include "gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "gguf/str_cat.h"

namespace ropewire::gguf {
namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
// Smallest encodings, used to refuse counts the remaining bytes cannot hold before allocating:
// a key-value is a key length (8), a type (4) and at least one value byte; a tensor info is a
// name length (8), a dimension count (4), a type (4) and an offset (8); an array element is at
// least its scalar size, a string length (8), or a nested array's type and count (12).
constexpr uint64_t kMinKeyValueBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 24;
constexpr uint64_t kMinStringBytes = 8;
constexpr uint64_t kMinNestedArrayBytes = 12;
// Arrays of arrays: no real file nests deeper or holds more (each costs a MetadataValue).
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxNestedArrays = uint64_t{1} << 20;

uint64_t AlignUp(uint64_t offset, uint64_t alignment) {
  return (offset + alignment - 1) / alignment * alignment;
}

std::string ValueWhat(std::string_view key) {
  return Cat("the value of metadata key \"", key, "\"");
}

}  // namespace

// Sequential little-endian reads over the file's bytes; running out is a "truncated" error
// that says what was being read and where.
class ByteReader {
 public:
  ByteReader(const uint8_t* bytes, uint64_t size, const std::string& source)
      : bytes_(bytes), size_(size), source_(source) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return bytes_ + pos_; }
  void Skip(uint64_t n) { pos_ += n; }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(Cat(source_, ": ", what));
  }
  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n <= left()) return absl::OkStatus();
    return Error(Cat("truncated file: ", what, " needs ", n, " bytes at offset ", pos_,
                     " but the file ends at ", size_));
  }
  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    RETURN_IF_ERROR(Need(sizeof(T), what));
    T value;
    std::memcpy(&value, here(), sizeof(T));  // little-endian, as x86-64 and aarch64 store it
    pos_ += sizeof(T);
    return value;
  }
  absl::StatusOr<std::string_view> ReadString(std::string_view what) {
    ASSIGN_OR_RETURN(uint64_t length, Read<uint64_t>(what));
    RETURN_IF_ERROR(Need(length, what));
    std::string_view s(reinterpret_cast<const char*>(here()), length);
    pos_ += length;
    return s;
  }

  absl::StatusOr<MetadataValue> ReadValue(uint32_t type_id, std::string_view key, int depth);

 private:
  absl::StatusOr<ValueType> ValueTypeOf(uint32_t id, std::string_view key,
                                        std::string_view role) const;
  absl::StatusOr<MetadataValue> ReadArray(std::string_view key, int depth);

  const uint8_t* bytes_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& source_;
  uint64_t nested_arrays_ = 0;  // read so far, against kMaxNestedArrays
};

absl::StatusOr<ValueType> ByteReader::ValueTypeOf(uint32_t id, std::string_view key,
                                                  std::string_view role) const {
  if (!ValueTypeName(id)) {
    return Error(
        Cat("metadata key \"", key, "\" has unknown ", role, " ", id, " (GGUF defines 0 to 12)"));
  }
  return static_cast<ValueType>(id);
}

absl::StatusOr<MetadataValue> ByteReader::ReadValue(uint32_t type_id, std::string_view key,
                                                    int depth) {
  ASSIGN_OR_RETURN(ValueType type, ValueTypeOf(type_id, key, "value type"));
  if (type == ValueType::kString) {
    ASSIGN_OR_RETURN(std::string_view s, ReadString(ValueWhat(key)));
    return MetadataValue::String(s);
  }
  if (type == ValueType::kArray) return ReadArray(key, depth);
  const int bytes = ScalarValueBytes(type);
  RETURN_IF_ERROR(Need(bytes, ValueWhat(key)));
  MetadataValue value = MetadataValue::Scalar(type, here());
  Skip(bytes);
  return value;
}

absl::StatusOr<MetadataValue> ByteReader::ReadArray(std::string_view key, int depth) {
  if (depth >= kMaxArrayDepth) {
    return Error(
        Cat("metadata key \"", key, "\" nests arrays deeper than ", kMaxArrayDepth, " levels"));
  }
  ASSIGN_OR_RETURN(uint32_t element_id, Read<uint32_t>(ValueWhat(key)));
  ASSIGN_OR_RETURN(ValueType element, ValueTypeOf(element_id, key, "array element type"));
  ASSIGN_OR_RETURN(uint64_t count, Read<uint64_t>(ValueWhat(key)));
  const uint64_t min_bytes = element == ValueType::kString  ? kMinStringBytes
                             : element == ValueType::kArray ? kMinNestedArrayBytes
                                                            : ScalarValueBytes(element);
  if (count > left() / min_bytes) {
    return Error(Cat("truncated file: metadata key \"", key, "\" claims an array of ", count, " ",
                     *ValueTypeName(element_id), " values, more than the ", left(),
                     " bytes left in the file can hold"));
  }
  if (element == ValueType::kString) {
    std::vector<std::string_view> strings(count);
    for (uint64_t i = 0; i < count; ++i) {
      ASSIGN_OR_RETURN(strings[i], ReadString(ValueWhat(key)));
    }
    return MetadataValue::StringArray(std::move(strings));
  }
  if (element == ValueType::kArray) {
    nested_arrays_ += count;
    if (nested_arrays_ > kMaxNestedArrays) {
      return Error(
          Cat("metadata key \"", key, "\" holds more than ", kMaxNestedArrays, " nested arrays"));
    }
    std::vector<MetadataValue> arrays;
    arrays.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      ASSIGN_OR_RETURN(MetadataValue inner, ReadArray(key, depth + 1));
      arrays.push_back(std::move(inner));
    }
    return MetadataValue::NestedArray(std::move(arrays));
  }
  MetadataValue value = MetadataValue::ScalarArray(element, here(), count);
  Skip(count * min_bytes);
  return value;
}

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t TensorInfo::NumRows() const { return row_length() == 0 ? 0 : NumElements() / row_length(); }

uint64_t TensorInfo::RowBytes() const {
  const TensorTypeTraits traits = Traits(type);
  return static_cast<uint64_t>(row_length()) / traits.block_values * traits.block_bytes;
}

std::string TensorInfo::DimsString() const { return Cat("[", absl::StrJoin(dims, ", "), "]"); }

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(Cat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(Cat(path, ": cannot stat: ", std::strerror(errno)));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(Cat(path, ": empty file, not a GGUF file"));
  }
  void* mapping = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(Cat(path, ": mmap failed: ", std::strerror(errno)));
  }
  file->mapping_ = mapping;
  file->bytes_ = static_cast<const uint8_t*>(mapping);
  file->size_ = static_cast<uint64_t>(st.st_size);
  RETURN_IF_ERROR(file->ParseAll());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(std::span<const uint8_t> bytes,
                                                          std::string source) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->source_ = std::move(source);
  file->owned_.assign(bytes.begin(), bytes.end());
  file->bytes_ = file->owned_.data();
  file->size_ = file->owned_.size();
  RETURN_IF_ERROR(file->ParseAll());
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

absl::Status GgufFile::ParseAll() {
  metadata_ = Metadata(source_);
  ByteReader reader(bytes_, size_, source_);
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  RETURN_IF_ERROR(ParseHeader(reader, tensor_count, kv_count));
  RETURN_IF_ERROR(ParseMetadata(reader, kv_count));
  RETURN_IF_ERROR(ParseTensorInfos(reader, tensor_count));
  RETURN_IF_ERROR(ReadAlignment());
  data_offset_ = AlignUp(reader.pos(), alignment_);
  return PlaceTensors();
}

absl::Status GgufFile::ParseHeader(ByteReader& reader, uint64_t& tensor_count, uint64_t& kv_count) {
  RETURN_IF_ERROR(reader.Need(4, "the magic number"));
  if (std::memcmp(reader.here(), kMagic, 4) != 0) {
    const uint8_t* m = reader.here();
    return reader.Error(Cat("not a GGUF file (bad magic: the file starts with bytes ", m[0], " ",
                            m[1], " ", m[2], " ", m[3], ", a GGUF file with \"GGUF\")"));
  }
  reader.Skip(4);
  ASSIGN_OR_RETURN(version_, reader.Read<uint32_t>("the header's version"));
  if (version_ == 0x02000000u || version_ == 0x03000000u) {
    return reader.Error("a big-endian GGUF file; ropewire reads little-endian files only");
  }
  if (version_ != 2 && version_ != 3) {
    return reader.Error(
        Cat("unsupported GGUF version ", version_, " (versions 2 and 3 are supported)"));
  }
  ASSIGN_OR_RETURN(tensor_count, reader.Read<uint64_t>("the header's tensor count"));
  ASSIGN_OR_RETURN(kv_count, reader.Read<uint64_t>("the header's metadata count"));
  if (kv_count > reader.left() / kMinKeyValueBytes) {
    return reader.Error(Cat("truncated file: the header claims ", kv_count,
                            " metadata entries, more than the ", reader.left(),
                            " bytes after it can hold"));
  }
  return absl::OkStatus();
}

absl::Status GgufFile::ParseMetadata(ByteReader& reader, uint64_t kv_count) {
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string what = Cat("the key of metadata entry ", i);
    ASSIGN_OR_RETURN(std::string_view key, reader.ReadString(what));
    if (key.empty()) return reader.Error(Cat("metadata entry ", i, " has an empty key"));
    ASSIGN_OR_RETURN(uint32_t type_id, reader.Read<uint32_t>(ValueWhat(key)));
    ASSIGN_OR_RETURN(MetadataValue value, reader.ReadValue(type_id, key, 0));
    if (!metadata_.Insert(std::string(key), std::move(value))) {
      return reader.Error(Cat("metadata key \"", key, "\" appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status GgufFile::ParseTensorInfos(ByteReader& reader, uint64_t tensor_count) {
  if (tensor_count > reader.left() / kMinTensorInfoBytes) {
    return reader.Error(Cat("truncated file: the header claims ", tensor_count,
                            " tensors, more than the ", reader.left(),
                            " bytes after the metadata can hold"));
  }
  tensors_.resize(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    RETURN_IF_ERROR(ParseTensorInfo(reader, i, tensors_[i]));
    if (!index_.emplace(tensors_[i].name, i).second) {
      return reader.Error(Cat("tensor \"", tensors_[i].name, "\" appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status GgufFile::ParseTensorInfo(ByteReader& reader, uint64_t index, TensorInfo& info) {
  ASSIGN_OR_RETURN(std::string_view name, reader.ReadString(Cat("the name of tensor ", index)));
  if (name.empty()) return reader.Error(Cat("tensor ", index, " has an empty name"));
  info.name = std::string(name);
  const std::string what = Cat("the info of tensor \"", info.name, "\"");
  auto bad = [&](std::string_view message) {
    return reader.Error(Cat("tensor \"", info.name, "\" ", message));
  };
  ASSIGN_OR_RETURN(uint32_t n_dims, reader.Read<uint32_t>(what));
  if (n_dims > kMaxDims) {
    return bad(Cat("has ", n_dims, " dimensions (at most ", kMaxDims, ")"));
  }
  uint64_t elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    ASSIGN_OR_RETURN(uint64_t dim, reader.Read<uint64_t>(what));
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(elements, dim, &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad("has dimensions whose product overflows 64 bits");
    }
    info.dims.push_back(static_cast<int64_t>(dim));
  }
  ASSIGN_OR_RETURN(uint32_t type_id, reader.Read<uint32_t>(what));
  const std::optional<TensorTypeTraits> traits = FindTensorType(type_id);
  if (!traits) {
    return bad(Cat("has ggml type ", type_id, ", ", TensorTypeName(type_id),
                   " that this reader cannot size"));
  }
  info.type = traits->type;
  if (info.row_length() % traits->block_values != 0) {
    return bad(Cat("has rows of ", info.row_length(), " values, not a multiple of the ",
                   traits->block_values, "-value blocks of its type ", traits->name));
  }
  info.num_bytes = elements / traits->block_values * traits->block_bytes;
  ASSIGN_OR_RETURN(info.offset, reader.Read<uint64_t>(what));
  return absl::OkStatus();
}

absl::Status GgufFile::ReadAlignment() {
  const MetadataValue* value = metadata_.Find("general.alignment");
  if (value == nullptr) return absl::OkStatus();
  if (value->type() != ValueType::kUint32) {
    return metadata_.Error("general.alignment",
                           Cat("must be a UINT32, not ", TypeDescription(*value)));
  }
  const uint64_t alignment = value->as_uint64();
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return metadata_.Error("general.alignment", Cat("is ", alignment, ", not a power of two"));
  }
  alignment_ = static_cast<uint32_t>(alignment);
  return absl::OkStatus();
}

absl::Status GgufFile::PlaceTensors() {
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  auto bad = [&](const TensorInfo& t, std::string_view message) {
    return absl::InvalidArgumentError(Cat(source_, ": tensor \"", t.name, "\" (",
                                          TensorTypeName(uint32_t(t.type)), " ", t.DimsString(),
                                          ", ", t.num_bytes, " bytes) ", message));
  };
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment_ != 0) {
      return bad(
          t, Cat("is at data offset ", t.offset, ", not a multiple of the alignment ", alignment_));
    }
    if (t.offset > data_size || t.num_bytes > data_size - t.offset) {
      return bad(t, Cat("extends past the end of the file: it ends at data offset ",
                        t.offset + t.num_bytes, " but the data section holds ", data_size,
                        " bytes (truncated file?)"));
    }
    t.data = bytes_ + data_offset_ + t.offset;
  }
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_) {
    if (t.num_bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& previous = *by_offset[i - 1];
    if (by_offset[i]->offset < previous.offset + previous.num_bytes) {
      return bad(*by_offset[i], Cat("overlaps tensor \"", previous.name, "\""));
    }
  }
  return absl::OkStatus();
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const TensorInfo*> GgufFile::Tensor(std::string_view name) const {
  if (const TensorInfo* t = FindTensor(name)) return t;
  return absl::NotFoundError(Cat(source_, ": no tensor \"", name, "\""));
}

absl::Status GgufFile::CheckTensorTypes(std::span<const TensorType> supported,
                                        std::string_view purpose) const {
  for (const TensorInfo& t : tensors_) {
    if (std::find(supported.begin(), supported.end(), t.type) != supported.end()) continue;
    std::vector<std::string> names;
    for (TensorType type : supported) names.emplace_back(Traits(type).name);
    return absl::UnimplementedError(
        Cat(source_, ": tensor \"", t.name, "\" has type ", Traits(t.type).name, ", which ",
            purpose, " does not support (supported: ", absl::StrJoin(names, ", "), ")"));
  }
  return absl::OkStatus();
}

}  // namespace ropewire::gguf
