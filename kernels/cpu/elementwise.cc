#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/simd.h"

namespace ropewire::kernels::cpu {
namespace {

// Rows below this count are handled by one thread: forking costs more than it saves.
constexpr int64_t kParallelRowThreshold = 4;

ROPEWIRE_SIMD_CLONES
void RmsNormRow(const float* x, const float* weight, float eps, float* out, int64_t cols) {
  float sum_squares = 0.0f;
#pragma omp simd reduction(+ : sum_squares)
  for (int64_t i = 0; i < cols; ++i) sum_squares += x[i] * x[i];
  const float inv_rms = 1.0f / std::sqrt(sum_squares / static_cast<float>(cols) + eps);
#pragma omp simd
  for (int64_t i = 0; i < cols; ++i) out[i] = weight[i] * (x[i] * inv_rms);
}

ROPEWIRE_SIMD_CLONES
void LayerNormRow(const float* x, const float* weight, const float* bias, float eps, float* out,
                  int64_t cols) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < cols; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(cols);
  float sum_squares = 0.0f;
#pragma omp simd reduction(+ : sum_squares)
  for (int64_t i = 0; i < cols; ++i) sum_squares += (x[i] - mean) * (x[i] - mean);
  const float inv_std = 1.0f / std::sqrt(sum_squares / static_cast<float>(cols) + eps);
  for (int64_t i = 0; i < cols; ++i) {
    const float y = (x[i] - mean) * inv_std * weight[i];
    out[i] = bias ? y + bias[i] : y;
  }
}

ROPEWIRE_SIMD_CLONES
void SiluGateMulRow(const float* gate, const float* up, float* out, int64_t cols) {
  for (int64_t i = 0; i < cols; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

ROPEWIRE_SIMD_CLONES
void ActivationRow(ActivationKind kind, float* x, int64_t cols) {
  switch (kind) {
    case ActivationKind::kGelu:
      for (int64_t i = 0; i < cols; ++i)
        x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      break;
    case ActivationKind::kGeluTanh:
      for (int64_t i = 0; i < cols; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(0.79788456080286536f * (v + 0.044715f * v * v * v)));
      }
      break;
    case ActivationKind::kBloomGelu:
      for (int64_t i = 0; i < cols; ++i) {
        const float v = x[i];
        x[i] = v * 0.5f * (1.0f + std::tanh(0.79788456f * v * (1.0f + 0.044715f * v * v)));
      }
      break;
    case ActivationKind::kRelu:
      for (int64_t i = 0; i < cols; ++i) x[i] = std::max(x[i], 0.0f);
      break;
    case ActivationKind::kSilu:
      for (int64_t i = 0; i < cols; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
      break;
  }
}

}  // namespace

void ApplyActivation(ActivationKind kind, float* x, int64_t stride, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols >= 16384)
  for (int64_t r = 0; r < rows; ++r) ActivationRow(kind, x + r * stride, cols);
}

void ClampInPlace(float* x, int64_t stride, int64_t rows, int64_t cols, float limit) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
    for (int64_t i = 0; i < cols; ++i) row[i] = std::min(std::max(row[i], -limit), limit);
  }
}

void ScaleInPlace(float* x, int64_t stride, int64_t rows, int64_t cols, float factor) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
#pragma omp simd
    for (int64_t i = 0; i < cols; ++i) row[i] *= factor;
  }
}

void AddTableRows(const float* table, int64_t dim, const int32_t* rows, int64_t num_rows,
                  float* out, int64_t out_stride) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* src = table + int64_t(rows[r]) * dim;
    float* dst = out + r * out_stride;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) dst[i] += src[i];
  }
}

void RmsNorm(const float* x, int64_t x_stride, const float* weight, float eps, float* out,
             int64_t out_stride, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows >= kParallelRowThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    RmsNormRow(x + r * x_stride, weight, eps, out + r * out_stride, cols);
  }
}

void LayerNorm(const float* x, int64_t x_stride, const float* weight, const float* bias, float eps,
               float* out, int64_t out_stride, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows >= kParallelRowThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    LayerNormRow(x + r * x_stride, weight, bias, eps, out + r * out_stride, cols);
  }
}

void SiluGateMul(const float* gate_up, int64_t gate_up_stride, float* out, int64_t out_stride,
                 int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols >= 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = gate_up + r * gate_up_stride;
    SiluGateMulRow(row, row + cols, out + r * out_stride, cols);
  }
}

void AddBias(float* x, int64_t stride, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * stride;
#pragma omp simd
    for (int64_t i = 0; i < cols; ++i) row[i] += bias[i];
  }
}

void EmbeddingLookup(const float* table, int64_t dim, const int32_t* ids, int64_t rows, float* out,
                     int64_t out_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out + r * out_stride, table + int64_t(ids[r]) * dim, sizeof(float) * dim);
  }
}

void GatherRows(const float* src, int64_t src_stride, const int32_t* rows, int64_t num_rows,
                float* dst, int64_t dst_stride, int64_t cols) {
  for (int64_t i = 0; i < num_rows; ++i) {
    std::memcpy(dst + i * dst_stride, src + int64_t(rows[i]) * src_stride, sizeof(float) * cols);
  }
}

void SoftmaxInPlace(float* x, int64_t n) {
  if (n <= 0) return;
  const float max_value = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace ropewire::kernels::cpu
