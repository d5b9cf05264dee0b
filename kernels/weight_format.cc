#include "kernels/weight_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/simd.h"
#include "kernels/cpu/x86_intrinsics.h"
#include "kernels/float16.h"

namespace ropewire::kernels {

const char* WeightFormatName(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32: return "f32";
    case WeightFormat::kF16: return "f16";
    case WeightFormat::kBF16: return "bf16";
    case WeightFormat::kQ8_0: return "q8_0";
    case WeightFormat::kQ4_0: return "q4_0";
    case WeightFormat::kQ4_1: return "q4_1";
  }
  return "unknown";
}

namespace {

ROPEWIRE_SIMD_CLONES
void FloatsToBf16(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToBf16(src[i]);
}

ROPEWIRE_SIMD_CLONES
void Bf16ToFloats(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(src[i]);
}

void FloatsToHalf(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToHalf(src[i]);
}

#ifdef ROPEWIRE_X86
__attribute__((target("avx,f16c"))) void HalfToFloatsF16c(const uint16_t* src, int64_t n,
                                                          float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = HalfToFloat(src[i]);
}
#endif

void HalfToFloats(const uint16_t* src, int64_t n, float* dst) {
#ifdef ROPEWIRE_X86
  static const bool f16c = cpu::CpuHasF16c();
  if (f16c) {
    HalfToFloatsF16c(src, n, dst);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = HalfToFloat(src[i]);
}

void QuantizeQ8_0(const float* x, int64_t n, BlockQ8_0* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = FloatToHalf(d);
    for (int j = 0; j < kQuantBlock; ++j) y[b].qs[j] = int8_t(std::roundf(x[j] * id));
  }
}

// Q4_0 with the block scale chosen for the least squared error, not just from the largest value:
// with 16 levels the simple choice (largest magnitude → -8) wastes a level on one outlier. The
// candidates map the largest magnitude to -(8 ± 0.9) steps; for each rounding, the best scale is
// the least-squares one, Σx·q / Σq². The blocks are GGUF's Q4_0, read by every Q4_0 kernel.
void QuantizeQ4_0(const float* x, int64_t n, BlockQ4_0* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    int8_t best_q[kQuantBlock] = {};
    float best_d = 0.0f;
    if (max != 0.0f) {
      float best_fit = -1.0f;  // (Σx·q)² / Σq²: the squared error is Σx² minus this
      for (int step = -9; step <= 9; ++step) {
        const float inverse = -(8.0f + 0.1f * float(step)) / max;
        int8_t q[kQuantBlock];
        float xq = 0.0f, qq = 0.0f;
        for (int j = 0; j < kQuantBlock; ++j) {  // round to nearest, clamped to [-8, 7]
          q[j] = int8_t(std::clamp(int(x[j] * inverse + 8.5f), 0, 15) - 8);
          xq += x[j] * float(q[j]);
          qq += float(q[j]) * float(q[j]);
        }
        if (qq > 0.0f && xq * xq > best_fit * qq) {
          best_fit = xq * xq / qq;
          best_d = xq / qq;
          std::copy(q, q + kQuantBlock, best_q);
        }
      }
    }
    y[b].d = FloatToHalf(best_d);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      y[b].qs[j] = uint8_t((best_q[j] + 8) | ((best_q[j + 16] + 8) << 4));
    }
  }
}

void QuantizeQ4_1(const float* x, int64_t n, BlockQ4_1* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float min = x[0], max = x[0];
    for (int j = 1; j < kQuantBlock; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = FloatToHalf(d);
    y[b].m = FloatToHalf(min);
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      const uint8_t lo = uint8_t(std::min(15, int(int8_t((x[j] - min) * id + 0.5f))));
      const uint8_t hi = uint8_t(std::min(15, int(int8_t((x[j + 16] - min) * id + 0.5f))));
      y[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

ROPEWIRE_SIMD_CLONES
void DequantizeQ8_0(const BlockQ8_0* x, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = HalfToFloat(x[b].d);
    for (int j = 0; j < kQuantBlock; ++j) y[b * kQuantBlock + j] = d * float(x[b].qs[j]);
  }
}

ROPEWIRE_SIMD_CLONES
void DequantizeQ4_0(const BlockQ4_0* x, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = HalfToFloat(x[b].d);
    float* out = y + b * kQuantBlock;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      out[j] = d * float(int(x[b].qs[j] & 0x0F) - 8);
      out[j + 16] = d * float(int(x[b].qs[j] >> 4) - 8);
    }
  }
}

ROPEWIRE_SIMD_CLONES
void DequantizeQ4_1(const BlockQ4_1* x, int64_t n, float* y) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float d = HalfToFloat(x[b].d);
    const float m = HalfToFloat(x[b].m);
    float* out = y + b * kQuantBlock;
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      out[j] = d * float(x[b].qs[j] & 0x0F) + m;
      out[j + 16] = d * float(x[b].qs[j] >> 4) + m;
    }
  }
}

}  // namespace

void QuantizeRow(WeightFormat format, const float* src, int64_t n, void* dst) {
  switch (format) {
    case WeightFormat::kF32: std::memcpy(dst, src, sizeof(float) * n); return;
    case WeightFormat::kBF16: FloatsToBf16(src, n, static_cast<uint16_t*>(dst)); return;
    case WeightFormat::kF16: FloatsToHalf(src, n, static_cast<uint16_t*>(dst)); return;
    case WeightFormat::kQ8_0: QuantizeQ8_0(src, n, static_cast<BlockQ8_0*>(dst)); return;
    case WeightFormat::kQ4_0: QuantizeQ4_0(src, n, static_cast<BlockQ4_0*>(dst)); return;
    case WeightFormat::kQ4_1: QuantizeQ4_1(src, n, static_cast<BlockQ4_1*>(dst)); return;
  }
}

void DequantizeRow(WeightFormat format, const void* src, int64_t n, float* dst) {
  switch (format) {
    case WeightFormat::kF32: std::memcpy(dst, src, sizeof(float) * n); return;
    case WeightFormat::kBF16: Bf16ToFloats(static_cast<const uint16_t*>(src), n, dst); return;
    case WeightFormat::kF16: HalfToFloats(static_cast<const uint16_t*>(src), n, dst); return;
    case WeightFormat::kQ8_0: DequantizeQ8_0(static_cast<const BlockQ8_0*>(src), n, dst); return;
    case WeightFormat::kQ4_0: DequantizeQ4_0(static_cast<const BlockQ4_0*>(src), n, dst); return;
    case WeightFormat::kQ4_1: DequantizeQ4_1(static_cast<const BlockQ4_1*>(src), n, dst); return;
  }
}

void DequantizeRows(const WeightView& w, int64_t first, int64_t count, float* dst, int64_t ld) {
  for (int64_t r = 0; r < count; ++r)
    DequantizeRow(w.format, w.Row(first + r), w.cols, dst + r * ld);
}

}  // namespace ropewire::kernels
