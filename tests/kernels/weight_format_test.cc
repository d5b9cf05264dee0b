// Weight storage formats on the CPU: 16-bit conversions against the hardware's, the block
// formats' quantize / dequantize against a scalar reference written from their definitions
// (kernels/weight_format.h), and MatMulWeight for every format against f32 arithmetic on the
// dequantized weights, with the SIMD and the portable decode kernels agreeing.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/weight_gemm.h"
#include "kernels/cpu/x86_intrinsics.h"
#include "kernels/float16.h"
#include "kernels/weight_format.h"

namespace ropewire::kernels::cpu {
namespace {

using kernels::DequantizeRow;
using kernels::DequantizeRows;
using kernels::QuantizeRow;

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

#ifdef ROPEWIRE_X86
__attribute__((target("f16c"))) uint16_t HardwareHalf(float x) {
  return _cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) float HardwareHalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

TEST(Float16, HalfConversionsMatchTheHardware) {
  if (!cpu::CpuHasF16c()) GTEST_SKIP() << "no F16C on this CPU";
  // Every half value round trips, and a spread of f32 bit patterns (normal, subnormal, huge,
  // ties) narrows exactly as vcvtps2ph does.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float expected = HardwareHalfToFloat(uint16_t(h));
    const float got = HalfToFloat(uint16_t(h));
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(got, expected) << h;
    }
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 2000000; ++i) {
    const float x = FromBits(rng());
    if (std::isnan(x)) continue;
    ASSERT_EQ(FloatToHalf(x), HardwareHalf(x)) << x;
  }
  for (float x : {65504.0f, 65519.0f, 65520.0f, 1e-8f, 2.98e-8f, 5.96e-8f, -0.0f, 0.1f}) {
    EXPECT_EQ(FloatToHalf(x), HardwareHalf(x)) << x;
  }
}
#endif

TEST(Float16, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBf16(FromBits(0x3F808000)), 0x3F80);  // a tie rounds to the even neighbour
  EXPECT_EQ(FloatToBf16(FromBits(0x3F818000)), 0x3F82);
  EXPECT_EQ(FloatToBf16(FromBits(0x3F808001)), 0x3F81);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_EQ(Bf16ToFloat(0x4049), 3.140625f);
}

// The definitions of the block formats, element by element, independent of quantize.cc.
float ReferenceHalf(float x) { return HalfToFloat(FloatToHalf(x)); }

std::vector<float> ReferenceRoundTrip(WeightFormat format, const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* v = x.data() + b * 32;
    float* o = out.data() + b * 32;
    if (format == WeightFormat::kQ8_0) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(v[j]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < 32; ++j) o[j] = ReferenceHalf(d) * std::roundf(v[j] * id);
    } else if (format == WeightFormat::kQ4_0) {
      // ggml's choice of scale (the largest magnitude maps to -8); ropewire's quantizer searches
      // for a better one, so this is the error bound it must meet, not its output.
      float max = 0;
      for (int j = 0; j < 32; ++j) max = std::fabs(v[j]) > std::fabs(max) ? v[j] : max;
      const float d = max / -8.0f;
      for (int j = 0; j < 32; ++j) {
        const int q = std::min(15, int(int8_t(v[j] * (d ? 1.0f / d : 0.0f) + 8.5f)));
        o[j] = ReferenceHalf(d) * float(q - 8);
      }
    } else {
      float min = v[0], max = v[0];
      for (int j = 0; j < 32; ++j) min = std::min(min, v[j]), max = std::max(max, v[j]);
      const float d = (max - min) / 15.0f;
      for (int j = 0; j < 32; ++j) {
        const int q = std::min(15, int(int8_t((v[j] - min) * (d ? 1.0f / d : 0.0f) + 0.5f)));
        o[j] = ReferenceHalf(d) * float(q) + ReferenceHalf(min);
      }
    }
  }
  return out;
}

class BlockFormatTest : public ::testing::TestWithParam<WeightFormat> {};

TEST_P(BlockFormatTest, RoundTripMatchesTheDefinition) {
  const WeightFormat format = GetParam();
  std::vector<float> x = Random(32 * 64, 11, 0.05f);
  for (int j = 0; j < 32; ++j) x[32 + j] = 0.0f;  // an all-zero block
  x[64] = 3.0f;                                   // an outlier dominating its block
  std::vector<uint8_t> stored(RowBytes(format, x.size()));
  QuantizeRow(format, x.data(), int64_t(x.size()), stored.data());
  std::vector<float> back(x.size());
  DequantizeRow(format, stored.data(), int64_t(x.size()), back.data());
  const std::vector<float> expected = ReferenceRoundTrip(format, x);
  if (format == WeightFormat::kQ4_0) {
    // The stored blocks decode by the definition: d (f16) · (nibble - 8), low nibbles first.
    for (size_t b = 0; b < x.size() / 32; ++b) {
      const uint8_t* block = stored.data() + b * 18;
      uint16_t d_bits;
      std::memcpy(&d_bits, block, 2);
      const float d = HalfToFloat(d_bits);
      for (int j = 0; j < 16; ++j) {
        ASSERT_EQ(back[b * 32 + j], d * float((block[2 + j] & 15) - 8)) << b << " " << j;
        ASSERT_EQ(back[b * 32 + j + 16], d * float((block[2 + j] >> 4) - 8)) << b << " " << j;
      }
      // And each block's squared error is at most that of ggml's scale.
      double error = 0, ggml_error = 0;
      for (int j = 0; j < 32; ++j) {
        error += std::pow(double(back[b * 32 + j]) - x[b * 32 + j], 2);
        ggml_error += std::pow(double(expected[b * 32 + j]) - x[b * 32 + j], 2);
      }
      EXPECT_LE(error, ggml_error * 1.001 + 1e-12) << "block " << b;
    }
    return;
  }
  for (size_t i = 0; i < x.size(); ++i) ASSERT_FLOAT_EQ(back[i], expected[i]) << i;
  // And the error is what the format allows: half a step of its block's scale.
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float lo = x[b * 32], hi = x[b * 32], amax = 0;
    for (int j = 0; j < 32; ++j) {
      lo = std::min(lo, x[b * 32 + j]), hi = std::max(hi, x[b * 32 + j]);
      amax = std::max(amax, std::fabs(x[b * 32 + j]));
    }
    const float step = format == WeightFormat::kQ8_0 ? amax / 127.0f : (hi - lo) / 15.0f;
    for (int j = 0; j < 32; ++j) {
      EXPECT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), 0.51f * step + 1e-3f * amax + 1e-7f);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, BlockFormatTest,
                         ::testing::Values(WeightFormat::kQ8_0, WeightFormat::kQ4_0,
                                           WeightFormat::kQ4_1),
                         [](const auto& info) { return WeightFormatName(info.param); });

TEST(WeightFormats, SixteenBitRowsRoundTrip) {
  const std::vector<float> x = Random(100, 5);
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kF16}) {
    std::vector<uint16_t> stored(x.size());
    QuantizeRow(f, x.data(), int64_t(x.size()), stored.data());
    std::vector<float> back(x.size());
    DequantizeRow(f, stored.data(), int64_t(x.size()), back.data());
    for (size_t i = 0; i < x.size(); ++i) {
      const float expected = f == WeightFormat::kBF16 ? Bf16ToFloat(FloatToBf16(x[i]))
                                                      : HalfToFloat(FloatToHalf(x[i]));
      ASSERT_EQ(back[i], expected);
    }
  }
}

struct GemmCase {
  WeightFormat format;
  int64_t m;
};

class MatMulWeightTest : public ::testing::TestWithParam<GemmCase> {
 protected:
  void TearDown() override { SetWeightKernelsForTesting(WeightKernels::kBest); }
};

// C for every row count a step produces (decode rows and prefill tiles), against double
// arithmetic on the dequantized weights. Block formats also quantize the activations, so they
// are allowed the error of 8-bit activations.
TEST_P(MatMulWeightTest, MatchesF32ArithmeticOnTheStoredWeights) {
  const auto [format, m] = GetParam();
  const int64_t n = 77, k = 320;
  const std::vector<float> w = Random(n * k, 1, 0.05f);
  const std::vector<float> a = Random(m * k, 2);
  std::vector<uint8_t> stored(n * RowBytes(format, k));
  for (int64_t r = 0; r < n; ++r) {
    QuantizeRow(format, w.data() + r * k, k, stored.data() + r * RowBytes(format, k));
  }
  const WeightView view{format, stored.data(), n, k};
  std::vector<float> dequantized(n * k);
  DequantizeRows(view, 0, n, dequantized.data(), k);
  const double tolerance = IsQuantized(format) ? 2e-2 : 1e-5;
  for (WeightKernels kernels : {WeightKernels::kBest, WeightKernels::kPortable}) {
    SetWeightKernelsForTesting(kernels);
    std::vector<float> c(m * (n + 3), 1.0f);
    MatMulWeight(a.data(), k, view, c.data(), n + 3, m, /*accumulate=*/true);
    double worst = 0;
    for (int64_t i = 0; i < m; ++i) {
      double norm = 0;
      for (int64_t j = 0; j < k; ++j) norm += std::fabs(a[i * k + j]) * 0.05;
      for (int64_t r = 0; r < n; ++r) {
        double expected = 1.0;  // accumulated onto
        for (int64_t j = 0; j < k; ++j) expected += double(a[i * k + j]) * dequantized[r * k + j];
        worst = std::max(worst, std::fabs(c[i * (n + 3) + r] - expected) / norm);
      }
    }
    EXPECT_LE(worst, tolerance) << (kernels == WeightKernels::kBest ? "best" : "portable");
  }
}

TEST_P(MatMulWeightTest, SimdAndPortableKernelsAgree) {
  const auto [format, m] = GetParam();
  if (!WeightSimdKernelsAvailable()) GTEST_SKIP() << "no AVX2/FMA/F16C: only the portable kernels";
  const int64_t n = 45, k = 256;
  const std::vector<float> w = Random(n * k, 7, 0.05f);
  const std::vector<float> a = Random(m * k, 8);
  std::vector<uint8_t> stored(n * RowBytes(format, k));
  for (int64_t r = 0; r < n; ++r) {
    QuantizeRow(format, w.data() + r * k, k, stored.data() + r * RowBytes(format, k));
  }
  const WeightView view{format, stored.data(), n, k};
  std::vector<float> best(m * n), portable(m * n);
  MatMulWeight(a.data(), k, view, best.data(), n, m);
  SetWeightKernelsForTesting(WeightKernels::kPortable);
  MatMulWeight(a.data(), k, view, portable.data(), n, m);
  for (int64_t i = 0; i < m * n; ++i) {
    EXPECT_NEAR(best[i], portable[i], 1e-4f * (1.0f + std::fabs(portable[i]))) << i;
  }
}

std::vector<GemmCase> AllCases() {
  std::vector<GemmCase> cases;
  for (WeightFormat f : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kF16,
                         WeightFormat::kQ8_0, WeightFormat::kQ4_0, WeightFormat::kQ4_1}) {
    for (int64_t m : {1, 2, 3, 4, 5, 40}) cases.push_back({f, m});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats, MatMulWeightTest, ::testing::ValuesIn(AllCases()),
                         [](const auto& info) {
                           return std::string(WeightFormatName(info.param.format)) + "_m" +
                                  std::to_string(info.param.m);
                         });

}  // namespace
}  // namespace ropewire::kernels::cpu
