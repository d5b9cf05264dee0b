#include "bench/model/random_llama.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/testing/safetensors_writer.h"
#include "nlohmann/json.hpp"

namespace ropewire::bench {
namespace {

using model::TensorToWrite;

const std::map<std::string, LlamaShape>& Shapes() {
  static const auto* shapes = new std::map<std::string, LlamaShape>{
      // 112M parameters, 350 MB read per decode token: the size class of the smallest chat models.
      {"small", {"small", 32000, 768, 2048, 10, 12, 4}},
      // 501M parameters, 2.0 GB of f32 weights: a 0.5B model (Qwen2-0.5B / TinyLlama class).
      {"large", {"large", 32000, 1536, 4096, 16, 12, 4}},
      // Llama-3.2-3B: 3.6B parameters, 7.2 GB in bf16, the 128256-entry vocabulary of Llama 3.
      {"llama3-3b", {"llama3-3b", 128256, 3072, 8192, 28, 24, 8}},
      // Llama-3-8B: 8.0B parameters, 16 GB in bf16 — the model that must fit a 24 GB machine.
      {"llama3-8b", {"llama3-8b", 128256, 4096, 14336, 32, 32, 8}},
  };
  return *shapes;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashName(uint64_t seed, const std::string& name) {
  uint64_t h = SplitMix64(seed);
  for (unsigned char c : name) h = SplitMix64(h ^ c);
  return h;
}

// Approximately N(0, stddev²): the sum of four 16-bit uniforms (Irwin–Hall, variance 1/3 after
// scaling to [0, 1)) recentred and rescaled. Each value depends only on (stream, index), so the
// fill is parallel and the checkpoint is the same whatever the thread count.
void FillNormal(float* out, int64_t n, uint64_t stream, float stddev) {
  const float scale = stddev * std::sqrt(3.0f) / 65536.0f;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = SplitMix64(stream ^ uint64_t(i) * 0xd1342543de82ef95ull);
    const float sum =
        float(r & 0xffff) + float((r >> 16) & 0xffff) + float((r >> 32) & 0xffff) + float(r >> 48);
    out[i] = (sum - 2.0f * 65535.0f) * scale;
  }
}

constexpr float kInitStddev = 0.02f;

TensorToWrite RandomTensor(const std::string& name, std::vector<int64_t> shape, uint64_t seed) {
  TensorToWrite t;
  t.name = name;
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  t.shape = std::move(shape);
  t.values.resize(count);
  FillNormal(t.values.data(), count, HashName(seed, name), kInitStddev);
  return t;
}

TensorToWrite OnesTensor(const std::string& name, int64_t n) {
  TensorToWrite t;
  t.name = name;
  t.shape = {n};
  t.values.assign(n, 1.0f);
  return t;
}

std::vector<TensorToWrite> LayerTensors(const LlamaShape& s, int layer, uint64_t seed) {
  const std::string p = absl::StrCat("model.layers.", layer, ".");
  const int64_t h = s.hidden_size;
  const int64_t q_rows = int64_t(s.num_heads) * s.head_dim();
  const int64_t kv_rows = int64_t(s.num_kv_heads) * s.head_dim();
  const int64_t inter = s.intermediate_size;
  std::vector<TensorToWrite> tensors;
  tensors.push_back(OnesTensor(p + "input_layernorm.weight", h));
  tensors.push_back(OnesTensor(p + "post_attention_layernorm.weight", h));
  tensors.push_back(RandomTensor(p + "self_attn.q_proj.weight", {q_rows, h}, seed));
  tensors.push_back(RandomTensor(p + "self_attn.k_proj.weight", {kv_rows, h}, seed));
  tensors.push_back(RandomTensor(p + "self_attn.v_proj.weight", {kv_rows, h}, seed));
  tensors.push_back(RandomTensor(p + "self_attn.o_proj.weight", {h, q_rows}, seed));
  tensors.push_back(RandomTensor(p + "mlp.gate_proj.weight", {inter, h}, seed));
  tensors.push_back(RandomTensor(p + "mlp.up_proj.weight", {inter, h}, seed));
  tensors.push_back(RandomTensor(p + "mlp.down_proj.weight", {h, inter}, seed));
  return tensors;
}

std::vector<TensorToWrite> OuterTensors(const LlamaShape& s, uint64_t seed) {
  std::vector<TensorToWrite> tensors;
  tensors.push_back(RandomTensor("model.embed_tokens.weight", {s.vocab_size, s.hidden_size}, seed));
  tensors.push_back(OnesTensor("model.norm.weight", s.hidden_size));
  tensors.push_back(RandomTensor("lm_head.weight", {s.vocab_size, s.hidden_size}, seed));
  return tensors;
}

const char* TorchDtype(model::DType dtype) {
  return dtype == model::DType::kBF16  ? "bfloat16"
         : dtype == model::DType::kF16 ? "float16"
                                       : "float32";
}

nlohmann::json ConfigJson(const LlamaShape& s, model::DType dtype) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", s.vocab_size},
          {"hidden_size", s.hidden_size},
          {"intermediate_size", s.intermediate_size},
          {"num_hidden_layers", s.num_layers},
          {"num_attention_heads", s.num_heads},
          {"num_key_value_heads", s.num_kv_heads},
          {"max_position_embeddings", 4096},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"hidden_act", "silu"},
          {"tie_word_embeddings", false},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", TorchDtype(dtype)},
          {"dtype", TorchDtype(dtype)}};
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) return absl::InternalError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

// Writes one shard and records its tensors in the index's weight map.
absl::Status WriteShard(const std::string& dir, const std::string& file,
                        std::vector<TensorToWrite> tensors, model::DType dtype,
                        nlohmann::json* weight_map, int64_t* total_bytes) {
  for (auto& t : tensors) t.dtype = dtype;
  RETURN_IF_ERROR(model::WriteSafetensors(dir + "/" + file, tensors));
  const int64_t value_bytes = dtype == model::DType::kF32 ? 4 : 2;
  for (const auto& t : tensors) {
    (*weight_map)[t.name] = file;
    *total_bytes += int64_t(t.values.size()) * value_bytes;
  }
  return absl::OkStatus();
}

}  // namespace

int64_t LlamaShape::LayerMatmulParams() const {
  const int64_t q = int64_t(num_heads) * head_dim();
  const int64_t kv = int64_t(num_kv_heads) * head_dim();
  return hidden_size * (q + 2 * kv) + q * hidden_size + 3 * hidden_size * intermediate_size;
}

int64_t LlamaShape::TotalParams() const {
  const int64_t per_layer = LayerMatmulParams() + 2 * hidden_size;
  return num_layers * per_layer + 2 * vocab_size * hidden_size + hidden_size;
}

absl::StatusOr<LlamaShape> NamedShape(const std::string& name) {
  const auto it = Shapes().find(name);
  if (it == Shapes().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown model shape \"", name, "\"; known: small, large, llama3-3b, llama3-8b"));
  }
  return it->second;
}

std::vector<std::string> NamedShapeList() { return {"small", "large", "llama3-3b", "llama3-8b"}; }

absl::Status WriteRandomLlama(const LlamaShape& shape, uint64_t seed, const std::string& dir,
                              model::DType dtype) {
  if (dtype != model::DType::kF32 && dtype != model::DType::kBF16 && dtype != model::DType::kF16) {
    return absl::InvalidArgumentError("random checkpoints are written in f32, bf16 or f16");
  }
  RETURN_IF_ERROR(WriteText(dir + "/config.json", ConfigJson(shape, dtype).dump(2)));
  const int shards = shape.num_layers + 1;
  nlohmann::json weight_map = nlohmann::json::object();
  int64_t total_bytes = 0;
  // One shard at a time keeps the generator's memory at one layer, not the whole model.
  for (int layer = 0; layer < shape.num_layers; ++layer) {
    const std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", layer + 1, shards);
    RETURN_IF_ERROR(
        WriteShard(dir, file, LayerTensors(shape, layer, seed), dtype, &weight_map, &total_bytes));
  }
  const std::string last = absl::StrFormat("model-%05d-of-%05d.safetensors", shards, shards);
  RETURN_IF_ERROR(
      WriteShard(dir, last, OuterTensors(shape, seed), dtype, &weight_map, &total_bytes));
  const nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}},
                                {"weight_map", weight_map}};
  return WriteText(dir + "/model.safetensors.index.json", index.dump(2));
}

absl::StatusOr<ScratchDir> ScratchDir::Create(const std::string& parent,
                                              const std::string& prefix) {
  std::string pattern = parent + "/" + prefix + "XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a scratch directory under ", parent));
  }
  return ScratchDir(pattern);
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScratchDir::~ScratchDir() { Remove(); }

void ScratchDir::Remove() {
  if (path_.empty()) return;
  std::error_code ignored;  // best effort: a leftover temp directory is not worth a crash
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace ropewire::bench
