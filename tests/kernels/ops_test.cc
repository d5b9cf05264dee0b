// Element-wise CPU kernels and the GEMM wrapper against plain double-precision loops.
#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"

namespace ropewire::kernels::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST(Gemm, TransposedWeightMatchesLoops) {
  // 1-4 rows take the skinny kernel (300 x 129 is large enough to split across threads); more
  // rows oneDNN primitives, 600 = a 512-row tile + 64 rows + a remainder of 24.
  for (auto [m, n, k] : {std::tuple{1, 300, 129},
                         {2, 300, 129},
                         {3, 31, 70},
                         {4, 300, 129},
                         {7, 64, 64},
                         {33, 17, 250},
                         {600, 40, 48}}) {
    const auto a = Random(m * k, 1), w = Random(n * k, 2);
    auto c = Random(m * n, 3);
    const auto c0 = c;
    MatMulTransposedB(a.data(), k, w.data(), k, c.data(), n, m, n, k, /*accumulate=*/true);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        double expected = c0[i * n + j];
        for (int t = 0; t < k; ++t) expected += double(a[i * k + t]) * w[j * k + t];
        EXPECT_NEAR(c[i * n + j], expected, 1e-4 * (1 + std::abs(expected))) << m << "x" << n;
      }
    }
  }
}

TEST(Gemm, PlainMatchesLoops) {
  const int m = 5, n = 9, k = 13;
  const auto a = Random(m * k, 4), b = Random(k * n, 5);
  std::vector<float> c(m * n);
  MatMul(a.data(), k, b.data(), n, c.data(), n, m, n, k);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double expected = 0.0;
      for (int t = 0; t < k; ++t) expected += double(a[i * k + t]) * b[t * n + j];
      EXPECT_NEAR(c[i * n + j], expected, 1e-4 * (1 + std::abs(expected)));
    }
  }
}

TEST(RmsNorm, MatchesDefinition) {
  const int rows = 6, cols = 257;
  const auto x = Random(rows * cols, 6), w = Random(cols, 7);
  std::vector<float> out(rows * cols);
  RmsNorm(x.data(), cols, w.data(), 1e-5f, out.data(), cols, rows, cols);
  for (int r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int i = 0; i < cols; ++i) ss += double(x[r * cols + i]) * x[r * cols + i];
    const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
    for (int i = 0; i < cols; ++i) {
      EXPECT_NEAR(out[r * cols + i], w[i] * x[r * cols + i] * inv, 1e-5);
    }
  }
}

TEST(LayerNorm, MatchesDefinition) {
  const int rows = 3, cols = 100;
  const auto x = Random(rows * cols, 8), w = Random(cols, 9), b = Random(cols, 10);
  std::vector<float> out(rows * cols);
  LayerNorm(x.data(), cols, w.data(), b.data(), 1e-5f, out.data(), cols, rows, cols);
  for (int r = 0; r < rows; ++r) {
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < cols; ++i) mean += x[r * cols + i];
    mean /= cols;
    for (int i = 0; i < cols; ++i) var += (x[r * cols + i] - mean) * (x[r * cols + i] - mean);
    var /= cols;
    for (int i = 0; i < cols; ++i) {
      const double expected = (x[r * cols + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
      EXPECT_NEAR(out[r * cols + i], expected, 1e-4);
    }
  }
}

TEST(SiluGateMul, MatchesDefinition) {
  const int rows = 4, cols = 50;
  const auto gu = Random(rows * 2 * cols, 11);
  std::vector<float> out(rows * cols);
  SiluGateMul(gu.data(), 2 * cols, out.data(), cols, rows, cols);
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) {
      const double g = gu[r * 2 * cols + i], u = gu[r * 2 * cols + cols + i];
      EXPECT_NEAR(out[r * cols + i], g / (1 + std::exp(-g)) * u, 1e-5);
    }
  }
}

TEST(Softmax, SumsToOneAndIsStable) {
  std::vector<float> x = {1000.0f, 1001.0f, 999.0f, -INFINITY};
  SoftmaxInPlace(x.data(), 4);
  EXPECT_NEAR(x[0] + x[1] + x[2] + x[3], 1.0f, 1e-6);
  EXPECT_NEAR(x[1], std::exp(1.0) / (1 + std::exp(1.0) + std::exp(-1.0)), 1e-6);
  EXPECT_EQ(x[3], 0.0f);
}

}  // namespace
}  // namespace ropewire::kernels::cpu
