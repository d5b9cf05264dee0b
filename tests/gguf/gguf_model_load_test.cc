// Loading GGUF models: a small random Llama written as GGUF the way llama.cpp's converter writes
// it (its tensor order, Q/K rows permuted for the interleaved rotation) and as the Hugging Face
// directory it stands for. The GGUF model, served with the interleaved RoPE over its rows as
// stored, computes the directory's logits; its tensors keep their stored formats unless a flag
// asks for another; every malformed file is a load error naming what is wrong.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gguf/testing/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/weight_format.h"
#include "model/executor.h"
#include "model/families/checkpoint_loader.h"
#include "model/gguf/gguf_weights.h"
#include "model/gguf/qk_permutation.h"
#include "model/greedy.h"
#include "model/testing/safetensors_writer.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {
namespace {

using gguf::TensorType;
using gguf::testing::GgufWriter;
using kernels::WeightFormat;
using ::testing::HasSubstr;

constexpr int64_t kHidden = 64, kHeads = 2, kKvHeads = 1, kHeadDim = 32, kInter = 64, kVocab = 8;

// One HF tensor: name, [rows, cols], values.
struct HfTensor {
  std::string hf_name;
  std::string gguf_name;
  int64_t rows, cols;  // cols 0: a vector of `rows` values
  std::vector<float> values;
};

// What to break in the written GGUF file.
struct Damage {
  std::string architecture = "llama";
  std::string skip_key;      // metadata key left out
  std::string skip_tensor;   // tensor left out
  std::string swapped_dims;  // tensor written with its dims swapped
  std::string q5_0_tensor;   // tensor written as Q5_0 (a type ropewire does not compute with)
};

// A one-layer Llama in llama.cpp's tensor order. Matrices are stored in `type` (F32 or Q8_0);
// the HF values are what those bytes hold, so both files describe the same model.
class TinyLlama {
 public:
  explicit TinyLlama(TensorType type) : type_(type) {
    std::mt19937 random(7);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    auto matrix = [&](std::string hf, std::string gguf_name, int64_t rows, int64_t cols) {
      std::vector<float> values(size_t(rows * cols));
      for (float& v : values) v = normal(random);
      tensors_.push_back({hf, gguf_name, rows, cols, Stored(values, cols)});
    };
    auto norm = [&](std::string hf, std::string gguf_name) {
      std::vector<float> values(kHidden);
      for (float& v : values) v = 1.0f + 0.1f * normal(random);
      tensors_.push_back({hf, gguf_name, kHidden, 0, values});
    };
    const std::string l = "model.layers.0.";
    matrix("model.embed_tokens.weight", "token_embd.weight", kVocab, kHidden);
    norm(l + "input_layernorm.weight", "blk.0.attn_norm.weight");
    matrix(l + "mlp.down_proj.weight", "blk.0.ffn_down.weight", kHidden, kInter);
    matrix(l + "mlp.gate_proj.weight", "blk.0.ffn_gate.weight", kInter, kHidden);
    matrix(l + "mlp.up_proj.weight", "blk.0.ffn_up.weight", kInter, kHidden);
    norm(l + "post_attention_layernorm.weight", "blk.0.ffn_norm.weight");
    matrix(l + "self_attn.k_proj.weight", "blk.0.attn_k.weight", kKvHeads * kHeadDim, kHidden);
    matrix(l + "self_attn.o_proj.weight", "blk.0.attn_output.weight", kHidden, kHidden);
    matrix(l + "self_attn.q_proj.weight", "blk.0.attn_q.weight", kHeads * kHeadDim, kHidden);
    matrix(l + "self_attn.v_proj.weight", "blk.0.attn_v.weight", kKvHeads * kHeadDim, kHidden);
    norm("model.norm.weight", "output_norm.weight");
    matrix("lm_head.weight", "output.weight", kVocab, kHidden);
  }

  // The values `type_` holds for `values` (quantized and back for Q8_0).
  std::vector<float> Stored(const std::vector<float>& values, int64_t cols) const {
    if (type_ == TensorType::kF32) return values;
    std::vector<float> out(values.size());
    std::vector<uint8_t> block(size_t(kernels::RowBytes(WeightFormat::kQ8_0, cols)));
    for (size_t r = 0; r < values.size() / size_t(cols); ++r) {
      kernels::QuantizeRow(WeightFormat::kQ8_0, values.data() + r * cols, cols, block.data());
      kernels::DequantizeRow(WeightFormat::kQ8_0, block.data(), cols, out.data() + r * cols);
    }
    return out;
  }

  // The bytes of a matrix as GGUF stores it (Q and K rows permuted).
  std::vector<uint8_t> GgufBytes(const HfTensor& t, TensorType type) const {
    std::vector<float> values = t.values;
    const bool q = t.gguf_name.ends_with("attn_q.weight");
    if (q || t.gguf_name.ends_with("attn_k.weight")) {
      const std::vector<int64_t> order = GgufRowsFromHfQk(q ? kHeads : kKvHeads, kHeadDim);
      GatherRows(reinterpret_cast<const uint8_t*>(t.values.data()), uint64_t(t.cols) * 4, order,
                 reinterpret_cast<uint8_t*>(values.data()));
    }
    const int64_t cols = t.cols == 0 ? t.rows : t.cols;
    const WeightFormat format = type == TensorType::kF32    ? WeightFormat::kF32
                                : type == TensorType::kQ8_0 ? WeightFormat::kQ8_0
                                                            : WeightFormat::kQ4_0;
    const int64_t row_bytes = kernels::RowBytes(format, cols);
    std::vector<uint8_t> bytes(size_t(row_bytes * (int64_t(values.size()) / cols)));
    for (size_t r = 0; r < values.size() / size_t(cols); ++r) {
      kernels::QuantizeRow(format, values.data() + r * cols, cols, bytes.data() + r * row_bytes);
    }
    return bytes;
  }

  GgufWriter Gguf(const Damage& damage = {}) const {
    GgufWriter w;
    const std::string a = damage.architecture;
    auto key = [&](const std::string& k) { return k != damage.skip_key; };
    w.AddString("general.architecture", a);
    if (key(a + ".context_length")) w.AddUint32(a + ".context_length", 128);
    if (key(a + ".embedding_length")) w.AddUint32(a + ".embedding_length", kHidden);
    if (key(a + ".block_count")) w.AddUint32(a + ".block_count", 1);
    if (key(a + ".feed_forward_length")) w.AddUint32(a + ".feed_forward_length", kInter);
    if (key(a + ".attention.head_count")) w.AddUint32(a + ".attention.head_count", kHeads);
    w.AddUint32(a + ".attention.head_count_kv", kKvHeads);
    w.AddFloat32(a + ".rope.freq_base", 10000.0f);
    w.AddFloat32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
    std::vector<std::string> tokens;
    for (int i = 0; i < kVocab; ++i) tokens.push_back("t" + std::to_string(i));
    w.AddStringArray("tokenizer.ggml.tokens", tokens);
    w.AddUint32("tokenizer.ggml.bos_token_id", 0);
    w.AddUint32("tokenizer.ggml.eos_token_id", 1);
    for (const HfTensor& t : tensors_) {
      if (t.gguf_name == damage.skip_tensor) continue;
      const bool matrix = t.cols != 0;
      std::vector<int64_t> dims =
          matrix ? std::vector<int64_t>{t.cols, t.rows} : std::vector<int64_t>{t.rows};
      if (t.gguf_name == damage.swapped_dims) std::swap(dims.front(), dims.back());
      if (t.gguf_name == damage.q5_0_tensor) {
        // 22-byte blocks; the bytes do not matter, the type is refused.
        w.AddTensor(t.gguf_name, TensorType::kQ5_0, dims,
                    std::vector<uint8_t>(size_t(t.rows * t.cols / 32 * 22), 0));
        continue;
      }
      const TensorType type = matrix ? type_ : TensorType::kF32;
      w.AddTensor(t.gguf_name, type, dims, GgufBytes(t, type));
    }
    return w;
  }

  // The same model as a Hugging Face directory (f32 safetensors).
  void WriteHfDirectory(const std::string& dir) const {
    std::filesystem::create_directories(dir);
    const nlohmann::json config = {{"model_type", "llama"},
                                   {"architectures", {"LlamaForCausalLM"}},
                                   {"vocab_size", kVocab},
                                   {"hidden_size", kHidden},
                                   {"intermediate_size", kInter},
                                   {"num_hidden_layers", 1},
                                   {"num_attention_heads", kHeads},
                                   {"num_key_value_heads", kKvHeads},
                                   {"max_position_embeddings", 128},
                                   {"rms_norm_eps", double(1e-5f)},
                                   {"rope_theta", 10000.0},
                                   {"tie_word_embeddings", false},
                                   {"bos_token_id", 0},
                                   {"eos_token_id", 1}};
    std::ofstream(dir + "/config.json") << config.dump();
    std::vector<TensorToWrite> tensors;
    for (const HfTensor& t : tensors_) {
      std::vector<int64_t> shape =
          t.cols == 0 ? std::vector<int64_t>{t.rows} : std::vector<int64_t>{t.rows, t.cols};
      tensors.push_back({t.hf_name, shape, DType::kF32, t.values});
    }
    ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  }

 private:
  TensorType type_;
  std::vector<HfTensor> tensors_;
};

class GgufModelLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ropewire-gguf-load-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const GgufWriter& w, const std::string& name = "tiny.gguf") {
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(w.WriteFile(path).ok());
    return path;
  }
  std::string LoadError(const GgufWriter& w, WeightFormatOptions options = {}) {
    auto checkpoint = LoadCheckpoint(Write(w), options);
    return checkpoint.ok() ? "loaded" : std::string(checkpoint.status().message());
  }

  std::filesystem::path dir_;
};

// Logits of every position of a prompt.
std::vector<float> Logits(ModelCheckpoint checkpoint) {
  ExecutorOptions options;
  options.num_blocks = 8;
  options.block_size = 16;
  options.kv_cache_dtype = "f32";
  auto executor = CreateExecutor(std::move(checkpoint), options);
  EXPECT_TRUE(executor.ok()) << executor.status();
  if (!executor.ok()) return {};
  GreedyOptions greedy;
  greedy.max_tokens = 1;
  greedy.keep_prompt_logits = true;
  greedy.stop_at_eos = false;
  auto result = GenerateGreedy(**executor, {0, 3, 5, 2, 7, 4, 6, 1, 3}, greedy);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->prompt_logits : std::vector<float>();
}

void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected,
                float tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  ASSERT_FALSE(actual.empty());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tolerance) << "at " << i;
  }
}

// The rows as stored, served with the interleaved rotation, compute the HF model.
TEST_F(GgufModelLoadTest, F32FileComputesItsHfDirectory) {
  const TinyLlama model(TensorType::kF32);
  model.WriteHfDirectory((dir_ / "hf").string());
  auto hf = LoadCheckpoint((dir_ / "hf").string());
  ASSERT_TRUE(hf.ok()) << hf.status();
  const std::string path = Write(model.Gguf());
  auto gguf = LoadCheckpoint(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  EXPECT_EQ(gguf->config.position.rope.layout, kernels::RopeLayout::kInterleaved);
  auto config = LoadGgufModelConfig(path);  // what ropewire-generate --info prints
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->position.rope.layout, kernels::RopeLayout::kInterleaved);
  EXPECT_EQ(hf->config.position.rope.layout, kernels::RopeLayout::kNeox);
  EXPECT_EQ(gguf->weights.layers[0].qkv.format(), WeightFormat::kF32);
  ExpectNear(Logits(std::move(*gguf)), Logits(std::move(*hf)), 1e-4f);
}

TEST_F(GgufModelLoadTest, Q8_0FileServedAsStoredOrConverted) {
  const TinyLlama model(TensorType::kQ8_0);
  model.WriteHfDirectory((dir_ / "hf").string());
  auto hf = LoadCheckpoint((dir_ / "hf").string());
  ASSERT_TRUE(hf.ok()) << hf.status();
  const std::string path = Write(model.Gguf());

  auto stored = LoadCheckpoint(path);
  ASSERT_TRUE(stored.ok()) << stored.status();
  const DecoderLayerWeights& layer = stored->weights.layers[0];
  for (const Weight* w : std::initializer_list<const Weight*>{
           &layer.qkv, &layer.o_proj, &layer.up, &layer.down, &stored->weights.embed_tokens,
           &stored->weights.lm_head}) {
    EXPECT_EQ(w->format(), WeightFormat::kQ8_0);
  }
  EXPECT_EQ(layer.qkv.rows(), (kHeads + 2 * kKvHeads) * kHeadDim);
  EXPECT_EQ(layer.up.rows(), 2 * kInter);  // [gate; up], in place
  EXPECT_EQ(stored->weight_formats, "as stored (q8_0)");
  // Activations are quantized to Q8 blocks against the HF model's f32 ones.
  const std::vector<float> reference = Logits(std::move(*hf));
  ExpectNear(Logits(std::move(*stored)), reference, 0.05f);

  WeightFormatOptions f32;
  f32.weight_dtype = "f32";
  auto widened = LoadCheckpoint(path, f32);
  ASSERT_TRUE(widened.ok()) << widened.status();
  EXPECT_EQ(widened->weights.layers[0].qkv.format(), WeightFormat::kF32);
  EXPECT_EQ(widened->weights.layers[0].up.format(), WeightFormat::kF32);
  ExpectNear(Logits(std::move(*widened)), reference, 1e-4f);

  WeightFormatOptions q4;
  q4.quantization = "q4_0";
  auto requantized = LoadCheckpoint(path, q4);
  ASSERT_TRUE(requantized.ok()) << requantized.status();
  EXPECT_EQ(requantized->weights.layers[0].qkv.format(), WeightFormat::kQ4_0);
  EXPECT_EQ(requantized->weights.layers[0].up.format(), WeightFormat::kQ4_0);
  EXPECT_EQ(requantized->weights.lm_head.format(), WeightFormat::kQ8_0);
}

TEST_F(GgufModelLoadTest, MalformedModelsAreLoadErrors) {
  const TinyLlama model(TensorType::kQ8_0);
  EXPECT_EQ(LoadError(model.Gguf()), "loaded");
  Damage shape;
  shape.swapped_dims = "blk.0.attn_k.weight";
  EXPECT_THAT(LoadError(model.Gguf(shape)),
              HasSubstr("tiny.gguf: tensor \"blk.0.attn_k.weight\" has dims [32, 64], but the "
                        "metadata gives [64, 32]"));
  Damage type;
  type.q5_0_tensor = "blk.0.ffn_down.weight";
  EXPECT_THAT(LoadError(model.Gguf(type)),
              HasSubstr("tiny.gguf: tensor \"blk.0.ffn_down.weight\" has type Q5_0, which "
                        "ropewire cannot compute with (supported: F32, F16, BF16, Q8_0, Q4_0, "
                        "Q4_1)"));
  Damage missing;
  missing.skip_tensor = "blk.0.ffn_up.weight";
  EXPECT_THAT(LoadError(model.Gguf(missing)), HasSubstr("blk.0.ffn_up.weight"));
  Damage key;
  key.skip_key = "llama.block_count";
  EXPECT_THAT(LoadError(model.Gguf(key)), HasSubstr("llama.block_count"));
  Damage architecture;
  architecture.architecture = "mamba";
  EXPECT_THAT(LoadError(model.Gguf(architecture)),
              HasSubstr("general.architecture \"mamba\" is not supported"));

  std::vector<uint8_t> bytes = model.Gguf().Bytes();
  bytes[0] = 'X';
  std::ofstream(dir_ / "magic.gguf", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  auto magic = LoadCheckpoint((dir_ / "magic.gguf").string());
  ASSERT_FALSE(magic.ok());
  EXPECT_THAT(std::string(magic.status().message()), HasSubstr("not a GGUF file (bad magic"));

  bytes = model.Gguf().Bytes();
  std::ofstream(dir_ / "cut.gguf", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() - 100));
  auto cut = LoadCheckpoint((dir_ / "cut.gguf").string());
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(std::string(cut.status().message()),
              HasSubstr("tensor \"output.weight\" (Q8_0 [64, 8], 544 bytes) extends past the end "
                        "of the file"));
}

// Random corruptions of a valid model file load or fail with an error naming the file: never a
// crash, and never an allocation the metadata asks for before the tensors confirm it (this
// found a block_count past INT_MAX turning into a negative layer count). Passed 20000 rounds
// once; 2000 here.
TEST_F(GgufModelLoadTest, RandomCorruptionsFailCleanly) {
  const std::vector<uint8_t> valid = TinyLlama(TensorType::kQ8_0).Gguf().Bytes();
  const std::string path = (dir_ / "fuzz.gguf").string();
  std::mt19937 random(20261203);
  int loaded = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> bytes = valid;
    // Most flips land in the header, metadata and tensor infos (the first 1 KiB), where they
    // change what the loader is told.
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int f = 0; f < flips; ++f) {
      bytes[random() % std::min<size_t>(bytes.size(), 1024)] = static_cast<uint8_t>(random());
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    auto checkpoint = LoadCheckpoint(path);
    if (checkpoint.ok()) {
      ++loaded;
    } else {
      EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr("fuzz.gguf"));
    }
  }
  EXPECT_GT(loaded, 0);  // flips inside strings and padding leave a loadable model
}

}  // namespace
}  // namespace ropewire::model
