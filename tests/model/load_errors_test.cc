// Malformed model directories give clear errors that name the file and the tensor or key,
// never a crash.
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/executor.h"
#include "model/safetensors.h"
#include "model/testing/safetensors_writer.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

namespace ropewire::model {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

class LoadErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ropewire_load_errors_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::copy(ropewire::testing::FixtureDir("llama_gqa"), dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& file) const { return (dir_ / file).string(); }

  nlohmann::json ReadConfig() const {
    std::ifstream in(Path("config.json"));
    return nlohmann::json::parse(in);
  }
  void WriteText(const std::string& file, const std::string& text) const {
    std::ofstream(Path(file), std::ios::trunc) << text;
  }
  void WriteConfig(const nlohmann::json& config) const { WriteText("config.json", config.dump(2)); }

  // Rewrites model.safetensors after `edit` changed the list of tensors.
  template <typename Edit>
  void RewriteWeights(Edit edit) const {
    std::vector<TensorToWrite> tensors;
    {
      auto store = TensorStore::Open(dir_.string());
      ASSERT_TRUE(store.ok()) << store.status();
      for (const auto& name : (*store)->Names()) {
        const TensorInfo* info = *(*store)->Find(name);
        TensorToWrite t{name, info->shape, DType::kF32, {}};
        t.values = *(*store)->ReadF32(name, info->shape);
        tensors.push_back(std::move(t));
      }
    }
    edit(tensors);
    ASSERT_TRUE(WriteSafetensors(Path("model.safetensors"), tensors).ok());
  }

  absl::Status Load() const {
    ExecutorOptions options;
    options.num_blocks = 8;
    return LoadExecutor(dir_.string(), options).status();
  }

  fs::path dir_;
};

TEST_F(LoadErrorsTest, FixtureLoadsUnchanged) { EXPECT_TRUE(Load().ok()) << Load(); }

TEST_F(LoadErrorsTest, MissingDirectory) {
  fs::remove_all(dir_);
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("config.json"));
}

TEST_F(LoadErrorsTest, BadJson) {
  WriteText("config.json", "{\"model_type\": \"llama\", \"hidden_size\": 64,");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("config.json"), HasSubstr("invalid JSON")));
}

TEST_F(LoadErrorsTest, UnknownArchitecture) {
  auto config = ReadConfig();
  config["model_type"] = "mamba_xl";
  WriteConfig(config);
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("unsupported model_type \"mamba_xl\""),
                                 HasSubstr("llama"), HasSubstr("config.json")));
}

TEST_F(LoadErrorsTest, MissingKey) {
  auto config = ReadConfig();
  config.erase("hidden_size");
  WriteConfig(config);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("\"hidden_size\""), HasSubstr("missing")));
}

TEST_F(LoadErrorsTest, WrongKeyType) {
  auto config = ReadConfig();
  config["num_attention_heads"] = "four";
  WriteConfig(config);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("\"num_attention_heads\""), HasSubstr("integer")));
}

TEST_F(LoadErrorsTest, HeadsNotDivisibleByKvHeads) {
  auto config = ReadConfig();
  config["num_key_value_heads"] = 3;
  WriteConfig(config);
  EXPECT_THAT(Load().message(), HasSubstr("num_key_value_heads"));
}

TEST_F(LoadErrorsTest, UnsupportedRopeType) {
  auto config = ReadConfig();
  config["rope_parameters"] = {{"rope_type", "warp_drive"}, {"rope_theta", 10000.0}};
  WriteConfig(config);
  const absl::Status s = Load();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), AllOf(HasSubstr("warp_drive"), HasSubstr("config.json")));
}

TEST_F(LoadErrorsTest, LinearScalingWithoutFactor) {
  auto config = ReadConfig();
  config["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 10000.0}};
  WriteConfig(config);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("\"factor\""), HasSubstr("missing")));
}

TEST_F(LoadErrorsTest, NoWeights) {
  fs::remove(Path("model.safetensors"));
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
}

TEST_F(LoadErrorsTest, MissingTensor) {
  RewriteWeights([](std::vector<TensorToWrite>& tensors) {
    std::erase_if(tensors,
                  [](const auto& t) { return t.name == "model.layers.1.mlp.down_proj.weight"; });
  });
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("\"model.layers.1.mlp.down_proj.weight\""));
}

TEST_F(LoadErrorsTest, MissingUntiedLmHead) {
  RewriteWeights([](std::vector<TensorToWrite>& tensors) {
    std::erase_if(tensors, [](const auto& t) { return t.name == "lm_head.weight"; });
  });
  EXPECT_THAT(Load().message(), HasSubstr("\"lm_head.weight\""));
}

TEST_F(LoadErrorsTest, WrongShape) {
  RewriteWeights([](std::vector<TensorToWrite>& tensors) {
    for (auto& t : tensors) {
      if (t.name == "model.layers.0.self_attn.k_proj.weight") {
        t.shape = {t.shape[1], t.shape[0]};
      }
    }
  });
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("model.safetensors"),
                                 HasSubstr("\"model.layers.0.self_attn.k_proj.weight\""),
                                 HasSubstr("[64, 32]"), HasSubstr("expected [32, 64]")));
}

TEST_F(LoadErrorsTest, TruncatedFile) {
  const auto size = fs::file_size(Path("model.safetensors"));
  fs::resize_file(Path("model.safetensors"), size * 6 / 10);
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("model.safetensors"), HasSubstr("truncated")));
}

TEST_F(LoadErrorsTest, TruncatedHeader) {
  fs::resize_file(Path("model.safetensors"), 40);
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("model.safetensors"), HasSubstr("header")));
}

TEST_F(LoadErrorsTest, TooShortForHeader) {
  fs::resize_file(Path("model.safetensors"), 3);
  EXPECT_THAT(Load().message(), HasSubstr("too short"));
}

TEST_F(LoadErrorsTest, HeaderNotJson) {
  std::ofstream out(Path("model.safetensors"), std::ios::binary | std::ios::trunc);
  const uint64_t n = 16;
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << "not json at all!";
  out.close();
  EXPECT_THAT(Load().message(), HasSubstr("header is not valid JSON"));
}

TEST_F(LoadErrorsTest, NonFloatWeight) {
  // An I32 tensor where a float weight belongs: the header is valid, the dtype is not.
  RewriteWeights([](std::vector<TensorToWrite>&) {});
  auto store = TensorStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  std::ifstream in(Path("model.safetensors"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string needle = "\"model.norm.weight\":{\"data_offsets\"";
  ASSERT_NE(bytes.find(needle), std::string::npos);
  const size_t dtype_at = bytes.find("\"F32\"", bytes.find(needle));
  bytes.replace(dtype_at, 5, "\"I32\"");
  std::ofstream(Path("model.safetensors"), std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_THAT(Load().message(), AllOf(HasSubstr("\"model.norm.weight\""), HasSubstr("I32")));
}

TEST_F(LoadErrorsTest, IndexNamesMissingShard) {
  WriteText(
      "model.safetensors.index.json",
      R"({"metadata": {}, "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}})");
  const absl::Status s = Load();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("model-00002-of-00002.safetensors"));
}

TEST_F(LoadErrorsTest, IndexWithoutWeightMap) {
  WriteText("model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_THAT(Load().message(), HasSubstr("weight_map"));
}

TEST(SafetensorsRoundTrip, HalfAndBfloatConversions) {
  const std::string path = (fs::temp_directory_path() / "ropewire_roundtrip.safetensors").string();
  // Values exactly representable in both 16-bit formats, plus a half subnormal and an infinity.
  const std::vector<float> values = {0.0f,   -0.0f,    1.0f,           -2.5f,
                                     0.375f, 65504.0f, 5.9604645e-08f, INFINITY};
  ASSERT_TRUE(
      WriteSafetensors(path, {{"h", {8}, DType::kF16, values},
                              {"b", {2, 2}, DType::kBF16, {1.0f, -3.0f, 0.15625f, 1024.0f}}})
          .ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo& h = (*file)->tensors().at("h");
  std::vector<float> out(8);
  ASSERT_TRUE(ConvertToF32(h.dtype, h.data, 8, out.data()).ok());
  EXPECT_EQ(out, values);
  const TensorInfo& b = (*file)->tensors().at("b");
  std::vector<float> out_b(4);
  ASSERT_TRUE(ConvertToF32(b.dtype, b.data, 4, out_b.data()).ok());
  EXPECT_EQ(out_b, (std::vector<float>{1.0f, -3.0f, 0.15625f, 1024.0f}));
  fs::remove(path);
}

}  // namespace
}  // namespace ropewire::model
