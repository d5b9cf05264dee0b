// Malformed GGUF files: each is a load error that names the file and what is wrong, never a
// crash or an allocation the file's size does not justify.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "gguf/testing/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ropewire::gguf {
namespace {

using testing::GgufWriter;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ErrorOf(const std::vector<uint8_t>& bytes) {
  auto file = GgufFile::Parse(bytes, "bad.gguf");
  if (file.ok()) return "parsed";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  return std::string(file.status().message());
}

template <typename T>
void Patch(std::vector<uint8_t>& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// A small valid file: two keys, two F32 tensors.
GgufWriter SmallFile() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  const std::vector<std::string> tokens = {"a", "b", "c"};
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  const std::vector<float> a = {1, 2, 3, 4}, b = {5, 6};
  w.AddF32Tensor("a", {4}, a);
  w.AddF32Tensor("b", {2}, b);
  return w;
}

TEST(MalformedGgufTest, TheSmallFileParses) { EXPECT_EQ(ErrorOf(SmallFile().Bytes()), "parsed"); }

TEST(MalformedGgufTest, BadMagic) {
  std::vector<uint8_t> bytes = SmallFile().Bytes();
  bytes[0] = 'P';
  EXPECT_EQ(ErrorOf(bytes),
            "bad.gguf: not a GGUF file (bad magic: the file starts with bytes 80 71 85 70, a "
            "GGUF file with \"GGUF\")");
  EXPECT_THAT(ErrorOf({'G', 'G'}), HasSubstr("truncated file: the magic number needs 4 bytes"));
  EXPECT_THAT(std::string(GgufFile::Parse({}, "empty.gguf").status().message()),
              StartsWith("empty.gguf: truncated file"));
}

TEST(MalformedGgufTest, UnsupportedVersion) {
  for (uint32_t version : {0u, 1u, 4u, 77u}) {
    GgufWriter w = SmallFile();
    w.set_version(version);
    EXPECT_EQ(ErrorOf(w.Bytes()), "bad.gguf: unsupported GGUF version " + std::to_string(version) +
                                      " (versions 2 and 3 are supported)");
  }
  GgufWriter w = SmallFile();
  w.set_version(0x03000000u);
  EXPECT_EQ(ErrorOf(w.Bytes()),
            "bad.gguf: a big-endian GGUF file; ropewire reads little-endian files only");
}

// Every prefix of a valid file is refused as truncated, with what was being read.
TEST(MalformedGgufTest, EveryTruncationIsAnError) {
  const std::vector<uint8_t> bytes = SmallFile().Bytes();
  for (size_t size = 0; size < bytes.size(); ++size) {
    const std::string error = ErrorOf({bytes.begin(), bytes.begin() + size});
    EXPECT_THAT(error, HasSubstr("truncated")) << "at " << size << ": " << error;
  }
  EXPECT_THAT(ErrorOf({bytes.begin(), bytes.begin() + 30}),
              HasSubstr("the header claims 2 metadata entries, more than the 6 bytes after it "
                        "can hold"));
  EXPECT_THAT(ErrorOf({bytes.begin(), bytes.begin() + 66}),
              HasSubstr("truncated file: the value of metadata key \"general.architecture\" "
                        "needs 5 bytes at offset 64 but the file ends at 66"));
  EXPECT_THAT(ErrorOf({bytes.begin(), bytes.end() - 1}),
              HasSubstr("tensor \"b\" (F32 [2], 8 bytes) extends past the end of the file: it "
                        "ends at data offset 40 but the data section holds 39 bytes"));
}

TEST(MalformedGgufTest, UnknownValueTypes) {
  GgufWriter w;
  w.AddRaw("general.mystery", 13, std::vector<uint8_t>{0, 0, 0, 0});
  EXPECT_EQ(ErrorOf(w.Bytes()),
            "bad.gguf: metadata key \"general.mystery\" has unknown value type 13 (GGUF defines "
            "0 to 12)");
  GgufWriter array;
  array.AddRaw("list", 9, std::vector<uint8_t>{99, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(ErrorOf(array.Bytes()),
            "bad.gguf: metadata key \"list\" has unknown array element type 99 (GGUF defines 0 "
            "to 12)");
}

TEST(MalformedGgufTest, DuplicatesAndEmptyNames) {
  GgufWriter keys;
  keys.AddUint32("x", 1);
  keys.AddUint32("x", 2);
  EXPECT_EQ(ErrorOf(keys.Bytes()), "bad.gguf: metadata key \"x\" appears twice");
  GgufWriter empty;
  empty.AddUint32("", 1);
  EXPECT_EQ(ErrorOf(empty.Bytes()), "bad.gguf: metadata entry 0 has an empty key");
  GgufWriter tensors;
  const std::vector<float> v = {1};
  tensors.AddF32Tensor("w", {1}, v);
  tensors.AddF32Tensor("w", {1}, v);
  EXPECT_EQ(ErrorOf(tensors.Bytes()), "bad.gguf: tensor \"w\" appears twice");
}

TEST(MalformedGgufTest, HostileCountsAreRefusedBeforeAllocating) {
  GgufWriter kv = SmallFile();
  kv.OverrideCounts(2, uint64_t{1} << 62);
  EXPECT_THAT(ErrorOf(kv.Bytes()), HasSubstr("the header claims 4611686018427387904 metadata "
                                             "entries, more than the"));
  GgufWriter tensors = SmallFile();
  tensors.OverrideCounts(uint64_t{1} << 60, 2);
  EXPECT_THAT(ErrorOf(tensors.Bytes()),
              HasSubstr("the header claims 1152921504606846976 tensors, more than the"));
  GgufWriter array;
  array.AddRaw("tokenizer.ggml.tokens", 9,
               std::vector<uint8_t>{8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40});  // 2^62 strings
  EXPECT_THAT(ErrorOf(array.Bytes()),
              HasSubstr("metadata key \"tokenizer.ggml.tokens\" claims an array of "
                        "4611686018427387904 STRING values, more than the 0 bytes left"));
  GgufWriter string;
  string.AddRaw("name", 8, std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f});
  EXPECT_THAT(ErrorOf(string.Bytes()),
              HasSubstr("truncated file: the value of metadata key \"name\" needs "
                        "9223372036854775807 bytes"));
}

TEST(MalformedGgufTest, DeeplyNestedArrays) {
  std::vector<uint8_t> value;
  for (int depth = 0; depth < 20; ++depth) {
    const std::vector<uint8_t> level = {9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    value.insert(value.end(), level.begin(), level.end());
  }
  GgufWriter w;
  w.AddRaw("deep", 9, value);
  EXPECT_EQ(ErrorOf(w.Bytes()),
            "bad.gguf: metadata key \"deep\" nests arrays deeper than 8 levels");
}

TEST(MalformedGgufTest, TensorInfos) {
  const std::vector<uint8_t> data(64, 0);
  auto with_info = [&](uint32_t type, std::vector<int64_t> dims, uint64_t offset) {
    GgufWriter w;
    w.AddTensorInfo("blk.0.ffn_up.weight", type, std::move(dims), offset);
    w.AppendData(data);
    return ErrorOf(w.Bytes());
  };
  EXPECT_EQ(with_info(0, {1, 1, 1, 1, 1}, 0),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" has 5 dimensions (at most 4)");
  EXPECT_EQ(with_info(77, {32}, 0),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" has ggml type 77, an unknown type that "
            "this reader cannot size");
  EXPECT_EQ(with_info(4, {32}, 0),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" has ggml type 4, Q4_2 (removed) that this "
            "reader cannot size");
  EXPECT_EQ(with_info(static_cast<uint32_t>(TensorType::kQ4_1), {33, 2}, 0),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" has rows of 33 values, not a multiple of "
            "the 32-value blocks of its type Q4_1");
  EXPECT_EQ(with_info(0, {1ll << 40, 1ll << 40}, 0),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" has dimensions whose product overflows 64 "
            "bits");
  EXPECT_EQ(with_info(0, {4}, 8),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" (F32 [4], 16 bytes) is at data offset 8, "
            "not a multiple of the alignment 32");
  EXPECT_EQ(with_info(0, {8, 4}, 32),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" (F32 [8, 4], 128 bytes) extends past the "
            "end of the file: it ends at data offset 160 but the data section holds 64 bytes "
            "(truncated file?)");
  EXPECT_EQ(with_info(0, {8}, uint64_t{1} << 63),
            "bad.gguf: tensor \"blk.0.ffn_up.weight\" (F32 [8], 32 bytes) extends past the end "
            "of the file: it ends at data offset 9223372036854775840 but the data section holds "
            "64 bytes (truncated file?)");
}

TEST(MalformedGgufTest, OverlappingTensors) {
  GgufWriter w;
  w.AddTensorInfo("first", 0, {16}, 0);
  w.AddTensorInfo("second", 0, {8}, 32);
  w.AppendData(std::vector<uint8_t>(96, 0));
  EXPECT_EQ(ErrorOf(w.Bytes()),
            "bad.gguf: tensor \"second\" (F32 [8], 32 bytes) overlaps tensor \"first\"");
}

TEST(MalformedGgufTest, Alignment) {
  GgufWriter type;
  type.AddUint64("general.alignment", 64);
  EXPECT_EQ(ErrorOf(type.Bytes()),
            "bad.gguf: metadata key \"general.alignment\" must be a UINT32, not UINT64");
  for (uint32_t alignment : {0u, 48u}) {
    GgufWriter w;
    w.AddUint32("general.alignment", alignment);
    EXPECT_EQ(ErrorOf(w.Bytes()), "bad.gguf: metadata key \"general.alignment\" is " +
                                      std::to_string(alignment) + ", not a power of two");
  }
}

// Random corruptions of a valid file parse or fail cleanly (run under a sanitizer to fuzz).
TEST(MalformedGgufTest, RandomCorruptionsFailCleanly) {
  GgufWriter w = SmallFile();
  w.AddRaw("nested", 9, std::vector<uint8_t>{9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,  //
                                             4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0});
  const std::vector<uint8_t> valid = w.Bytes();
  std::mt19937 random(20240611);
  int parsed = 0;
  for (int round = 0; round < 5000; ++round) {
    std::vector<uint8_t> bytes = valid;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int f = 0; f < flips; ++f) {
      bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
    }
    auto file = GgufFile::Parse(bytes, "fuzz.gguf");
    if (file.ok()) {
      ++parsed;
      for (const TensorInfo& t : (*file)->tensors()) {
        ASSERT_LE(t.data + t.num_bytes,
                  (*file)->tensors().empty() ? nullptr : t.data + t.num_bytes);
        ASSERT_LE(t.offset + t.num_bytes + (*file)->data_offset(), (*file)->size());
      }
    } else {
      EXPECT_THAT(std::string(file.status().message()), StartsWith("fuzz.gguf: "));
    }
  }
  EXPECT_GT(parsed, 0);  // flips inside tensor data or string contents leave a valid file
}

}  // namespace
}  // namespace ropewire::gguf
