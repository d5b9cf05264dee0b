// The CUDA dense operations of the forward pass against the CPU kernels (kernels/cpu), both given
// the same inputs rounded to bf16 / fp16. Outputs start poisoned (NaN) inside guard regions, so a
// test also sees elements never written, writes between strided rows and writes past either end
// of an array. Widths 1000 and 4096 take the 16-byte vector paths; 4097 and a stride of 1003 the
// scalar ones.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/convert.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/logits.h"
#include "tests/kernels/cuda/dense_test_util.h"
#include "tests/kernels/cuda/gpu_test_util.h"

namespace ropewire::kernels::cuda {
namespace {

using dense_test::Dtype;
using dense_test::ExpectExact;
using dense_test::GuardedArray;
using dense_test::RandomValues;
using dense_test::Rounded;
using dense_test::ToFloats;
using dense_test::ToStorage;
using dense_test::WithPoisonGaps;
using dense_test::WrittenRows;

struct Shape {
  int64_t rows, cols, stride;
};
std::string Describe(const Shape& s) {
  return absl::StrCat(s.rows, " x ", s.cols, " (stride ", s.stride, ")");
}
// One row and many; vector paths (1000, 4096 + 8) and scalar paths (4097, stride 1003).
constexpr Shape kRowShapes[] = {
    {1, 1000, 1000}, {3, 4097, 4097}, {33, 4096, 4104}, {5, 1000, 1003}, {200, 256, 256}};

template <typename T>
void ExpectClose(const std::vector<float>& out, const std::vector<float>& expected,
                 const std::string& what, double tolerance = Dtype<T>::kTolerance) {
  ASSERT_EQ(out.size(), expected.size()) << what;
  EXPECT_LE(dense_test::RelativeError(out, expected), tolerance)
      << what << " (" << Dtype<T>::kName << ")";
}

// Uploads a compact rows × cols host array with row stride `stride` and poison between rows.
template <typename T>
absl::StatusOr<GuardedArray<T>> UploadRows(const std::vector<float>& compact, const Shape& s) {
  return GuardedArray<T>::FromHost(WithPoisonGaps(ToStorage<T>(compact), s.rows, s.cols, s.stride));
}

template <typename T>
absl::StatusOr<GuardedArray<T>> Upload(const std::vector<float>& values) {
  return GuardedArray<T>::FromHost(ToStorage<T>(values));
}

void CpuNorm(NormKind kind, const std::vector<float>& x, const std::vector<float>& weight,
             const float* bias, float eps, int64_t rows, int64_t cols, std::vector<float>* out) {
  out->assign(rows * cols, 0.0f);
  if (kind == NormKind::kRmsNorm) {
    cpu::RmsNorm(x.data(), cols, weight.data(), eps, out->data(), cols, rows, cols);
  } else {
    cpu::LayerNorm(x.data(), cols, weight.data(), bias, eps, out->data(), cols, rows, cols);
  }
}

template <typename T>
class DenseCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ROPEWIRE_SKIP_WITHOUT_GPU();
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

struct DtypeNames {
  template <typename T>
  static std::string GetName(int) {
    return Dtype<T>::kName;
  }
};
using StorageTypes = ::testing::Types<__nv_bfloat16, __half>;
TYPED_TEST_SUITE(DenseCudaTest, StorageTypes, DtypeNames);

// ---------------------------------------------------------------------------------------------
// Conversions: exact (round-to-nearest-even both ways, as the host rounds).

TYPED_TEST(DenseCudaTest, ConvertsExactlyBothWays) {
  using T = TypeParam;
  for (int64_t count : {1, 7, 1000, 4097}) {
    for (int64_t misalign : {0, 1}) {  // 1: pointers off the vector alignment, scalar path
      SCOPED_TRACE(absl::StrCat(count, " elements, offset ", misalign));
      const std::vector<float> values = RandomValues(count, 11, 1000.0f);
      std::vector<float> padded(misalign, 1.0f);
      padded.insert(padded.end(), values.begin(), values.end());
      ASSERT_OK_AND_ASSIGN(auto in, GuardedArray<float>::FromHost(padded));
      ASSERT_OK_AND_ASSIGN(auto half, GuardedArray<T>::Poisoned(count + misalign));
      ASSERT_OK_AND_ASSIGN(auto back, GuardedArray<float>::Poisoned(count + misalign));
      ASSERT_OK(ConvertFromF32(in.data() + misalign, half.data() + misalign, count, this->stream_));
      ASSERT_OK(
          ConvertToF32<T>(half.data() + misalign, back.data() + misalign, count, this->stream_));
      ASSERT_OK_AND_ASSIGN(auto half_host, half.Read());
      ASSERT_OK_AND_ASSIGN(auto back_host, back.Read());
      const std::vector<float> expected = Rounded<T>(values);
      const std::vector<float> converted = ToFloats(half_host);
      ExpectExact({converted.begin() + misalign, converted.end()}, expected, "to 16 bits");
      ExpectExact({back_host.begin() + misalign, back_host.end()}, expected, "back to f32");
      if (misalign == 1) {  // the element before the range stays poisoned
        EXPECT_TRUE(std::isnan(dense_test::ToFloat(half_host[0])));
        EXPECT_TRUE(std::isnan(back_host[0]));
      }
    }
  }
}

TYPED_TEST(DenseCudaTest, UploadAsConvertsOnTheDevice) {
  using T = TypeParam;
  const std::vector<float> values = RandomValues(4097, 12, 10.0f);
  ASSERT_OK_AND_ASSIGN(DeviceBuffer buffer, UploadAs<T>(values.data(), 4097, this->stream_));
  ASSERT_EQ(buffer.bytes(), 4097 * sizeof(T));
  ASSERT_OK_AND_ASSIGN(std::vector<T> host, buffer.ToHost<T>());
  ExpectExact(ToFloats(host), Rounded<T>(values), "uploaded");
}

// ---------------------------------------------------------------------------------------------
// Norms.

template <typename T>
void CheckNorm(NormKind kind, bool with_bias, const Shape& s, bool in_place, cudaStream_t stream) {
  constexpr float kEps = 1e-5f;
  // Offset from zero so LayerNorm's mean matters; weights around 1 with either sign of spread.
  const auto x = Rounded<T>(RandomValues(s.rows * s.cols, 1, 2.0f, 0.5f));
  const auto weight = Rounded<T>(RandomValues(s.cols, 2, 0.5f, 1.0f));
  const auto bias = Rounded<T>(RandomValues(s.cols, 3));
  ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, s));
  ASSERT_OK_AND_ASSIGN(auto weight_dev, Upload<T>(weight));
  ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
  ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(s.rows * s.stride));
  const NormParams<T> norm{kind, weight_dev.data(), with_bias ? bias_dev.data() : nullptr, kEps};
  GuardedArray<T>& result = in_place ? x_dev : out_dev;
  ASSERT_OK(Norm(norm, x_dev.data(), s.stride, result.data(), s.stride, s.rows, s.cols, stream));

  std::vector<float> expected;
  CpuNorm(kind, x, weight, with_bias ? bias.data() : nullptr, kEps, s.rows, s.cols, &expected);
  ASSERT_OK_AND_ASSIGN(auto out, result.Read());
  ExpectClose<T>(WrittenRows(out, s.rows, s.cols, s.stride, "norm"), expected, "Norm");
}

TYPED_TEST(DenseCudaTest, NormMatchesCpu) {
  for (auto [kind, with_bias] : {std::pair{NormKind::kRmsNorm, false},
                                 {NormKind::kLayerNorm, false},
                                 {NormKind::kLayerNorm, true}}) {
    for (const Shape& s : kRowShapes) {
      for (bool in_place : {false, true}) {
        SCOPED_TRACE(absl::StrCat(kind == NormKind::kRmsNorm ? "RMSNorm " : "LayerNorm ",
                                  with_bias ? "with bias " : "", Describe(s),
                                  in_place ? " in place" : ""));
        CheckNorm<TypeParam>(kind, with_bias, s, in_place, this->stream_);
      }
    }
  }
}

template <typename T>
void CheckResidualNorm(NormKind kind, bool residual_bias, const Shape& s, cudaStream_t stream) {
  constexpr float kEps = 1e-6f;
  const auto x = Rounded<T>(RandomValues(s.rows * s.cols, 4, 2.0f));
  const auto residual = Rounded<T>(RandomValues(s.rows * s.cols, 5, 2.0f, 0.3f));
  const auto bias = Rounded<T>(RandomValues(s.cols, 6, 0.5f));
  const auto weight = Rounded<T>(RandomValues(s.cols, 7, 0.5f, 1.0f));
  const auto norm_bias = Rounded<T>(RandomValues(s.cols, 8));
  // The residual is compact (stride cols) while x and out use the shape's stride.
  const Shape compact{s.rows, s.cols, s.cols};
  ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, s));
  ASSERT_OK_AND_ASSIGN(auto residual_dev, UploadRows<T>(residual, compact));
  ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
  ASSERT_OK_AND_ASSIGN(auto weight_dev, Upload<T>(weight));
  ASSERT_OK_AND_ASSIGN(auto norm_bias_dev, Upload<T>(norm_bias));
  ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(s.rows * s.stride));
  const bool layer = kind == NormKind::kLayerNorm;
  const NormParams<T> norm{kind, weight_dev.data(), layer ? norm_bias_dev.data() : nullptr, kEps};
  ASSERT_OK(AddResidualAndNorm(norm, x_dev.data(), s.stride, residual_dev.data(), s.cols,
                               residual_bias ? bias_dev.data() : nullptr, out_dev.data(), s.stride,
                               s.rows, s.cols, stream));

  // The new residual stream is rounded to T, exactly as the host rounds the same f32 sum.
  std::vector<float> summed(x.size());
  for (int64_t i = 0; i < int64_t(x.size()); ++i) {
    float v = x[i] + residual[i];
    if (residual_bias) v += bias[i % s.cols];
    summed[i] = dense_test::ToFloat(dense_test::FromFloat<T>(v));
  }
  std::vector<float> expected;
  CpuNorm(kind, summed, weight, layer ? norm_bias.data() : nullptr, kEps, s.rows, s.cols,
          &expected);
  ASSERT_OK_AND_ASSIGN(auto x_after, x_dev.Read());
  ASSERT_OK_AND_ASSIGN(auto out, out_dev.Read());
  ExpectExact(WrittenRows(x_after, s.rows, s.cols, s.stride, "updated residual"), summed,
              "updated residual");
  ExpectClose<T>(WrittenRows(out, s.rows, s.cols, s.stride, "norm"), expected,
                 "AddResidualAndNorm");
}

TYPED_TEST(DenseCudaTest, AddResidualAndNormMatchesAddThenNorm) {
  for (NormKind kind : {NormKind::kRmsNorm, NormKind::kLayerNorm}) {
    for (bool residual_bias : {false, true}) {
      for (const Shape& s : kRowShapes) {
        SCOPED_TRACE(absl::StrCat(kind == NormKind::kRmsNorm ? "RMSNorm " : "LayerNorm ",
                                  residual_bias ? "with residual bias " : "", Describe(s)));
        CheckResidualNorm<TypeParam>(kind, residual_bias, s, this->stream_);
      }
    }
  }
}

TYPED_TEST(DenseCudaTest, GatherAndNormPicksClampedRows) {
  using T = TypeParam;
  constexpr int64_t kSourceRows = 20;
  // The last two indices are out of range and read the nearest valid row (19, then 0).
  const std::vector<int32_t> picks = {19, 0, 7, 7, 25, -3};
  const std::vector<int32_t> clamped = {19, 0, 7, 7, 19, 0};
  const int64_t rows = static_cast<int64_t>(picks.size());
  for (int64_t cols : {1000, 4097}) {
    SCOPED_TRACE(absl::StrCat(cols, " columns"));
    const Shape source{kSourceRows, cols, cols + 8};
    const auto x = Rounded<T>(RandomValues(kSourceRows * cols, 9, 2.0f, 0.5f));
    const auto weight = Rounded<T>(RandomValues(cols, 10, 0.5f, 1.0f));
    const auto bias = Rounded<T>(RandomValues(cols, 11));
    ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, source));
    ASSERT_OK_AND_ASSIGN(auto weight_dev, Upload<T>(weight));
    ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
    ASSERT_OK_AND_ASSIGN(auto picks_dev, GuardedArray<int32_t>::FromHost(picks));
    ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(rows * cols));
    const NormParams<T> norm{NormKind::kLayerNorm, weight_dev.data(), bias_dev.data(), 1e-5f};
    ASSERT_OK(GatherAndNorm(norm, x_dev.data(), source.stride, kSourceRows, picks_dev.data(), rows,
                            out_dev.data(), cols, cols, this->stream_));

    std::vector<float> gathered(rows * cols), expected;
    cpu::GatherRows(x.data(), cols, clamped.data(), rows, gathered.data(), cols, cols);
    CpuNorm(NormKind::kLayerNorm, gathered, weight, bias.data(), 1e-5f, rows, cols, &expected);
    ASSERT_OK_AND_ASSIGN(auto out, out_dev.Read());
    ExpectClose<T>(WrittenRows(out, rows, cols, cols, "gathered norm"), expected, "GatherAndNorm");
  }
}

// ---------------------------------------------------------------------------------------------
// Bias, clamp, activations, SwiGLU.

// Runs `gpu_op` on x ([rows, cols], stride) in place and compares with the CPU: x + bias (when
// with_bias), then `cpu_op` on the compact f32 copy.
template <typename T>
void CheckRowOp(const Shape& s, bool with_bias,
                const std::function<absl::Status(T* x, const T* bias)>& gpu_op,
                const std::function<void(float* x)>& cpu_op) {
  std::vector<float> x = Rounded<T>(RandomValues(s.rows * s.cols, 12, 4.0f));
  const auto bias = Rounded<T>(RandomValues(s.cols, 13));
  ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, s));
  ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
  ASSERT_OK(gpu_op(x_dev.data(), with_bias ? bias_dev.data() : nullptr));
  if (with_bias) cpu::AddBias(x.data(), s.cols, bias.data(), s.rows, s.cols);
  cpu_op(x.data());
  ASSERT_OK_AND_ASSIGN(auto out, x_dev.Read());
  ExpectClose<T>(WrittenRows(out, s.rows, s.cols, s.stride, "row op"), x, "row op");
}

TYPED_TEST(DenseCudaTest, BiasClampAndActivationsMatchCpu) {
  using T = TypeParam;
  const cudaStream_t stream = this->stream_;
  for (const Shape& s : kRowShapes) {
    SCOPED_TRACE(Describe(s));
    CheckRowOp<T>(
        s, true, [&](T* x, const T* b) { return AddBias(x, s.stride, b, s.rows, s.cols, stream); },
        [](float*) {});
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(with_bias ? "with bias" : "without bias");
      constexpr float kLimit = 1.5f;
      CheckRowOp<T>(
          s, with_bias,
          [&](T* x, const T* b) {
            return AddBiasAndClamp(x, s.stride, b, kLimit, s.rows, s.cols, stream);
          },
          [&](float* x) { cpu::ClampInPlace(x, s.cols, s.rows, s.cols, kLimit); });
      for (ActivationKind kind :
           {ActivationKind::kGelu, ActivationKind::kGeluTanh, ActivationKind::kBloomGelu,
            ActivationKind::kRelu, ActivationKind::kSilu}) {
        SCOPED_TRACE(absl::StrCat("activation ", static_cast<int>(kind)));
        CheckRowOp<T>(
            s, with_bias,
            [&](T* x, const T* b) {
              return AddBiasAndActivate(kind, x, s.stride, b, s.rows, s.cols, stream);
            },
            [&](float* x) { cpu::ApplyActivation(kind, x, s.cols, s.rows, s.cols); });
      }
    }
  }
}

TYPED_TEST(DenseCudaTest, SiluGateMulMatchesCpu) {
  using T = TypeParam;
  for (int64_t cols : {256, 1000, 4097}) {
    for (int64_t rows : {1, 9}) {
      for (bool with_bias : {false, true}) {
        const Shape gate_up{rows, 2 * cols, 2 * cols + (rows > 1 ? 8 : 0)};
        const Shape out_shape{rows, cols, cols + (rows > 1 ? 0 : 3)};
        SCOPED_TRACE(absl::StrCat(Describe(gate_up), " -> ", Describe(out_shape),
                                  with_bias ? " with bias" : ""));
        std::vector<float> gu = Rounded<T>(RandomValues(rows * 2 * cols, 14, 4.0f));
        const auto bias = Rounded<T>(RandomValues(2 * cols, 15));
        ASSERT_OK_AND_ASSIGN(auto gu_dev, UploadRows<T>(gu, gate_up));
        ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
        ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(rows * out_shape.stride));
        ASSERT_OK(SiluGateMul(gu_dev.data(), gate_up.stride, with_bias ? bias_dev.data() : nullptr,
                              out_dev.data(), out_shape.stride, rows, cols, this->stream_));

        if (with_bias) cpu::AddBias(gu.data(), 2 * cols, bias.data(), rows, 2 * cols);
        std::vector<float> expected(rows * cols);
        cpu::SiluGateMul(gu.data(), 2 * cols, expected.data(), cols, rows, cols);
        ASSERT_OK_AND_ASSIGN(auto out, out_dev.Read());
        ExpectClose<T>(WrittenRows(out, rows, cols, out_shape.stride, "swiglu"), expected,
                       "SiluGateMul");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Embeddings and row gathers.

constexpr int64_t kVocab = 300;
constexpr int64_t kPositionRows = 64;
constexpr int32_t kPositionOffset = 2;

// Token ids and positions with a few out of range, and the rows they must read after clamping.
struct TokenRows {
  std::vector<int32_t> ids, clamped_ids, positions, clamped_position_rows;
};
TokenRows MakeTokenRows(int64_t rows) {
  TokenRows t;
  for (int64_t r = 0; r < rows; ++r) {
    int32_t id = static_cast<int32_t>((r * 7919 + 13) % kVocab);
    int32_t position = static_cast<int32_t>((r * 31 + 5) % (kPositionRows - kPositionOffset));
    if (r == 1) id = -5;
    if (r == 2) id = kVocab + 7;
    if (r == 3) position = 1000;
    t.ids.push_back(id);
    t.clamped_ids.push_back(std::clamp(id, 0, static_cast<int32_t>(kVocab - 1)));
    t.positions.push_back(position);
    t.clamped_position_rows.push_back(
        std::clamp(position + kPositionOffset, 0, static_cast<int32_t>(kPositionRows - 1)));
  }
  return t;
}

TYPED_TEST(DenseCudaTest, EmbedTokensMatchesCpu) {
  using T = TypeParam;
  for (int64_t dim : {1000, 4097}) {
    for (int64_t rows : {1, 40}) {
      for (bool with_positions : {false, true}) {
        for (float scale : {1.0f, 3.5f}) {
          const Shape out_shape{rows, dim, dim + 8};
          SCOPED_TRACE(absl::StrCat(Describe(out_shape), with_positions ? " with positions" : "",
                                    " scale ", scale));
          const TokenRows t = MakeTokenRows(rows);
          const auto table = Rounded<T>(RandomValues(kVocab * dim, 16));
          const auto position_table = Rounded<T>(RandomValues(kPositionRows * dim, 17));
          ASSERT_OK_AND_ASSIGN(auto table_dev, Upload<T>(table));
          ASSERT_OK_AND_ASSIGN(auto position_dev, Upload<T>(position_table));
          ASSERT_OK_AND_ASSIGN(auto ids_dev, GuardedArray<int32_t>::FromHost(t.ids));
          ASSERT_OK_AND_ASSIGN(auto positions_dev, GuardedArray<int32_t>::FromHost(t.positions));
          ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(rows * out_shape.stride));
          EmbeddingTables<T> tables;
          tables.tokens = table_dev.data();
          tables.vocab = kVocab;
          tables.scale = scale;
          if (with_positions) {
            tables.positions = position_dev.data();
            tables.position_rows = kPositionRows;
            tables.position_offset = kPositionOffset;
          }
          ASSERT_OK(EmbedTokens(tables, ids_dev.data(), positions_dev.data(), rows, dim,
                                out_dev.data(), out_shape.stride, this->stream_));

          std::vector<float> expected(rows * dim);
          cpu::EmbeddingLookup(table.data(), dim, t.clamped_ids.data(), rows, expected.data(), dim);
          cpu::ScaleInPlace(expected.data(), dim, rows, dim, scale);
          if (with_positions) {
            cpu::AddTableRows(position_table.data(), dim, t.clamped_position_rows.data(), rows,
                              expected.data(), dim);
          }
          ASSERT_OK_AND_ASSIGN(auto out, out_dev.Read());
          ExpectClose<T>(WrittenRows(out, rows, dim, out_shape.stride, "embeddings"), expected,
                         "EmbedTokens");
        }
      }
    }
  }
}

TYPED_TEST(DenseCudaTest, ScaleAndAddPositionsInPlace) {
  using T = TypeParam;
  for (const Shape& s : {Shape{1, 1000, 1000}, Shape{40, 4097, 4097}, Shape{7, 1000, 1003}}) {
    SCOPED_TRACE(Describe(s));
    const TokenRows t = MakeTokenRows(s.rows);
    std::vector<float> x = Rounded<T>(RandomValues(s.rows * s.cols, 18));
    const auto position_table = Rounded<T>(RandomValues(kPositionRows * s.cols, 19));
    ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, s));
    ASSERT_OK_AND_ASSIGN(auto position_dev, Upload<T>(position_table));
    ASSERT_OK_AND_ASSIGN(auto positions_dev, GuardedArray<int32_t>::FromHost(t.positions));
    EmbeddingTables<T> tables;
    tables.scale = 0.75f;
    tables.positions = position_dev.data();
    tables.position_rows = kPositionRows;
    tables.position_offset = kPositionOffset;
    ASSERT_OK(ScaleAndAddPositions(tables, positions_dev.data(), s.rows, s.cols, x_dev.data(),
                                   s.stride, this->stream_));

    cpu::ScaleInPlace(x.data(), s.cols, s.rows, s.cols, 0.75f);
    cpu::AddTableRows(position_table.data(), s.cols, t.clamped_position_rows.data(), s.rows,
                      x.data(), s.cols);
    ASSERT_OK_AND_ASSIGN(auto out, x_dev.Read());
    ExpectClose<T>(WrittenRows(out, s.rows, s.cols, s.stride, "positions"), x,
                   "ScaleAndAddPositions");
  }
}

TYPED_TEST(DenseCudaTest, GatherRowsCopiesClampedRowsExactly) {
  using T = TypeParam;
  constexpr int64_t kSourceRows = 20;
  const std::vector<int32_t> picks = {3, 19, 19, 0, 40, -1};
  const std::vector<int32_t> clamped = {3, 19, 19, 0, 19, 0};
  const int64_t rows = static_cast<int64_t>(picks.size());
  for (int64_t cols : {1000, 4097}) {
    SCOPED_TRACE(absl::StrCat(cols, " columns"));
    const Shape source{kSourceRows, cols, cols + 5};
    const auto x = Rounded<T>(RandomValues(kSourceRows * cols, 20));
    ASSERT_OK_AND_ASSIGN(auto x_dev, UploadRows<T>(x, source));
    ASSERT_OK_AND_ASSIGN(auto picks_dev, GuardedArray<int32_t>::FromHost(picks));
    ASSERT_OK_AND_ASSIGN(auto out_dev, GuardedArray<T>::Poisoned(rows * (cols + 8)));
    ASSERT_OK(GatherRows(x_dev.data(), source.stride, kSourceRows, picks_dev.data(), rows,
                         out_dev.data(), cols + 8, cols, this->stream_));
    std::vector<float> expected(rows * cols);
    cpu::GatherRows(x.data(), cols, clamped.data(), rows, expected.data(), cols, cols);
    ASSERT_OK_AND_ASSIGN(auto out, out_dev.Read());
    ExpectExact(WrittenRows(out, rows, cols, cols + 8, "gathered rows"), expected, "GatherRows");
  }
}

// ---------------------------------------------------------------------------------------------
// The f32 logits end: bias and greedy argmax.

TYPED_TEST(DenseCudaTest, AddBiasToLogitsMatchesCpu) {
  using T = TypeParam;
  const Shape s{3, 50257, 50260};
  std::vector<float> logits = RandomValues(s.rows * s.cols, 21, 10.0f);
  const auto bias = Rounded<T>(RandomValues(s.cols, 22));
  ASSERT_OK_AND_ASSIGN(auto logits_dev, GuardedArray<float>::FromHost(
                                            WithPoisonGaps(logits, s.rows, s.cols, s.stride)));
  ASSERT_OK_AND_ASSIGN(auto bias_dev, Upload<T>(bias));
  ASSERT_OK(
      AddBiasToLogits(logits_dev.data(), s.stride, bias_dev.data(), s.rows, s.cols, this->stream_));
  cpu::AddBias(logits.data(), s.cols, bias.data(), s.rows, s.cols);
  ASSERT_OK_AND_ASSIGN(auto out, logits_dev.Read());
  // One f32 add of the same operands on both sides: exact.
  ExpectExact(WrittenRows(out, s.rows, s.cols, s.stride, "logits"), logits, "AddBiasToLogits");
}

TYPED_TEST(DenseCudaTest, ArgmaxRowsPicksTheFirstMaximum) {
  const Shape s{6, 50257, 50264};
  std::vector<float> logits = RandomValues(s.rows * s.cols, 23, 10.0f);
  float* row = logits.data();
  row[s.cols + 17] = row[s.cols + 3000] = 100.0f;  // row 1: a tie, the first index wins
  std::fill(row + 2 * s.cols, row + 3 * s.cols, -std::numeric_limits<float>::infinity());  // row 2
  row[3 * s.cols] = std::numeric_limits<float>::quiet_NaN();  // row 3: NaN is never the maximum
  row[3 * s.cols + 5] = 50.0f;
  row[5 * s.cols - 1] = 60.0f;  // row 4: the maximum in the last column
  // -1: whatever std::max_element picks.
  const std::vector<int32_t> special = {-1, 17, 0, 5, static_cast<int32_t>(s.cols - 1), -1};

  ASSERT_OK_AND_ASSIGN(auto logits_dev, GuardedArray<float>::FromHost(
                                            WithPoisonGaps(logits, s.rows, s.cols, s.stride)));
  ASSERT_OK_AND_ASSIGN(auto ids_dev, GuardedArray<int32_t>::Poisoned(s.rows));
  ASSERT_OK(ArgmaxRows(logits_dev.data(), s.stride, s.rows, s.cols, ids_dev.data(), this->stream_));
  ASSERT_OK_AND_ASSIGN(auto ids, ids_dev.Read());
  for (int64_t r = 0; r < s.rows; ++r) {
    const float* begin = logits.data() + r * s.cols;
    const int32_t expected =
        special[r] >= 0 ? special[r]
                        : static_cast<int32_t>(std::max_element(begin, begin + s.cols) - begin);
    EXPECT_EQ(ids[r], expected) << "row " << r;
  }

  // One short row (fewer columns than threads).
  const std::vector<float> small = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
  ASSERT_OK_AND_ASSIGN(auto small_dev, GuardedArray<float>::FromHost(small));
  ASSERT_OK(ArgmaxRows(small_dev.data(), 5, 1, 5, ids_dev.data(), this->stream_));
  ASSERT_OK_AND_ASSIGN(ids, ids_dev.Read());
  EXPECT_EQ(ids[0], 1);
}

// ---------------------------------------------------------------------------------------------
// GEMM through cuBLAS.

struct GemmShape {
  int64_t m, n, k, lda, ldc;
};

template <typename T, typename Out>
void CheckGemm(BlasHandle& blas, const GemmShape& g, bool accumulate, double tolerance) {
  const auto a = Rounded<T>(RandomValues(g.m * g.k, 24));
  const auto w = Rounded<T>(RandomValues(g.n * g.k, 25));
  std::vector<float> c = Rounded<Out>(RandomValues(g.m * g.n, 26, 8.0f));
  ASSERT_OK_AND_ASSIGN(auto a_dev, UploadRows<T>(a, Shape{g.m, g.k, g.lda}));
  ASSERT_OK_AND_ASSIGN(auto w_dev, Upload<T>(w));
  const Shape c_shape{g.m, g.n, g.ldc};
  auto c_dev = accumulate ? UploadRows<Out>(c, c_shape) : GuardedArray<Out>::Poisoned(g.m * g.ldc);
  ASSERT_TRUE(c_dev.ok()) << c_dev.status();
  ASSERT_OK((MatMulTransposedB<T, Out>(blas, a_dev.data(), g.lda, w_dev.data(), g.k, c_dev->data(),
                                       g.ldc, g.m, g.n, g.k, accumulate)));

  cpu::MatMulTransposedB(a.data(), g.k, w.data(), g.k, c.data(), g.n, g.m, g.n, g.k, accumulate);
  ASSERT_OK_AND_ASSIGN(auto out, c_dev->Read());
  ExpectClose<T>(WrittenRows(out, g.m, g.n, g.ldc, "gemm"), c, "MatMulTransposedB", tolerance);
}

TYPED_TEST(DenseCudaTest, MatMulTransposedBMatchesCpu) {
  using T = TypeParam;
  ASSERT_OK_AND_ASSIGN(BlasHandle blas, BlasHandle::Create(this->stream_));
  // Decode (one row), odd n and k, padded leading dimensions, a prefill-sized block.
  const GemmShape shapes[] = {{1, 1000, 4097, 4097, 1000},
                              {7, 4097, 1000, 1000, 4097},
                              {33, 257, 4096, 4104, 264},
                              {300, 1024, 256, 256, 1024}};
  for (const GemmShape& g : shapes) {
    for (bool accumulate : {false, true}) {
      SCOPED_TRACE(absl::StrCat(g.m, " x ", g.n, " x ", g.k, " lda ", g.lda, " ldc ", g.ldc,
                                accumulate ? " accumulating" : ""));
      CheckGemm<T, T>(blas, g, accumulate, Dtype<T>::kTolerance);
      // f32 output (the logits): no output rounding, only the f32 accumulation order differs.
      CheckGemm<T, float>(blas, g, accumulate, 1e-3);
    }
  }
}

// Shapes and pointers are validated on the host before anything reaches the device, so this test
// also runs (and guards the checks) where no GPU is visible.
TEST(DenseCudaArguments, RejectedBeforeAnyLaunch) {
  using T = __nv_bfloat16;
  const auto invalid = absl::StatusCode::kInvalidArgument;
  T* fake = reinterpret_cast<T*>(uintptr_t(256));  // never dereferenced: every call fails first
  const NormParams<T> norm{NormKind::kRmsNorm, fake, nullptr, 1e-5f};
  EXPECT_EQ(Norm(norm, fake, 8, fake, 16, 2, 16, nullptr).code(), invalid);  // stride < cols
  EXPECT_EQ(Norm(NormParams<T>{}, fake, 16, fake, 16, 2, 16, nullptr).code(), invalid);
  EXPECT_EQ(Norm(norm, fake, 16, fake, 16, -1, 16, nullptr).code(), invalid);
  EXPECT_EQ(
      AddResidualAndNorm<T>(norm, fake, 16, nullptr, 16, nullptr, fake, 16, 2, 16, nullptr).code(),
      invalid);
  EXPECT_EQ(GatherAndNorm(norm, fake, 16, 0, nullptr, 2, fake, 16, 16, nullptr).code(), invalid);
  EXPECT_EQ(AddBias<T>(fake, 16, nullptr, 2, 16, nullptr).code(), invalid);
  EXPECT_EQ(AddBiasAndClamp<T>(fake, 16, nullptr, -1.0f, 2, 16, nullptr).code(), invalid);
  EXPECT_EQ(SiluGateMul<T>(fake, 31, nullptr, fake, 16, 2, 16, nullptr).code(), invalid);
  EXPECT_EQ(EmbedTokens(EmbeddingTables<T>{}, nullptr, nullptr, 2, 16, fake, 16, nullptr).code(),
            invalid);
  EmbeddingTables<T> no_rows;
  no_rows.tokens = fake;
  const int32_t* fake_ids = reinterpret_cast<const int32_t*>(uintptr_t(256));
  EXPECT_EQ(EmbedTokens(no_rows, fake_ids, nullptr, 2, 16, fake, 16, nullptr).code(), invalid);
  EXPECT_EQ(GatherRows<T>(fake, 8, 4, fake_ids, 2, fake, 16, 16, nullptr).code(), invalid);
  EXPECT_EQ(ArgmaxRows(nullptr, int64_t(1) << 32, 1, int64_t(1) << 32, nullptr, nullptr).code(),
            invalid);
  EXPECT_EQ(ConvertFromF32<T>(nullptr, nullptr, -1, nullptr).code(), invalid);
}

}  // namespace
}  // namespace ropewire::kernels::cuda
