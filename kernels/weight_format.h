// How a weight matrix is stored: the descriptor loaders produce, kernels dispatch on, and every
// backend shares (DESIGN.md decision 9). Rows are output features, laid out one after another;
// a row of the block formats is cols / 32 blocks of GGUF's public layouts (ggml's Q8_0, Q4_0,
// Q4_1), so a GGUF tensor of these types is served in place:
//   Q8_0: f16 scale d, 32 int8 q            value = d * q
//   Q4_0: f16 scale d, 16 bytes of nibbles  value = d * (q - 8)
//   Q4_1: f16 scale d, f16 minimum m, nibbles value = d * q + m
// In a nibble block, byte j holds element j in its low nibble and element j + 16 in its high one.
#pragma once

#include <cstdint>

namespace ropewire::kernels {

enum class WeightFormat : uint8_t { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1 };

inline constexpr int kQuantBlock = 32;  // weights per block of the quantized formats

struct BlockQ8_0 {
  uint16_t d;  // f16
  int8_t qs[kQuantBlock];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQuantBlock / 2];
};
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;  // f16 minimum
  uint8_t qs[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20,
              "the block layouts are GGUF's, byte for byte");

inline constexpr bool IsQuantized(WeightFormat f) {
  return f == WeightFormat::kQ8_0 || f == WeightFormat::kQ4_0 || f == WeightFormat::kQ4_1;
}

// Bytes of one row of `cols` values (a whole number of blocks for the quantized formats).
inline constexpr int64_t RowBytes(WeightFormat f, int64_t cols) {
  switch (f) {
    case WeightFormat::kF32: return cols * 4;
    case WeightFormat::kF16:
    case WeightFormat::kBF16: return cols * 2;
    case WeightFormat::kQ8_0: return cols / kQuantBlock * int64_t(sizeof(BlockQ8_0));
    case WeightFormat::kQ4_0: return cols / kQuantBlock * int64_t(sizeof(BlockQ4_0));
    case WeightFormat::kQ4_1: return cols / kQuantBlock * int64_t(sizeof(BlockQ4_1));
  }
  return 0;
}

// "f32", "bf16", "q8_0", ... as flags and GGUF name them.
const char* WeightFormatName(WeightFormat f);

// A weight matrix as kernels read it.
struct WeightView {
  WeightFormat format = WeightFormat::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t row_bytes() const { return RowBytes(format, cols); }
  const uint8_t* Row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + r * row_bytes();
  }
};

// Conversions between f32 rows and the stored formats. The block formats round exactly as
// ggml's reference quantizers do, so a row quantized here and one quantized by llama.cpp's tools
// hold the same bytes.

// Writes `n` values of `src` as one row of `format` at `dst` (RowBytes(format, n) bytes); n is
// a multiple of kQuantBlock for the block formats.
void QuantizeRow(WeightFormat format, const float* src, int64_t n, void* dst);

// Reads one row of `n` values stored in `format` back as f32.
void DequantizeRow(WeightFormat format, const void* src, int64_t n, float* dst);

// Rows [first, first + count) of `w` as f32, `ld` floats apart in `dst`.
void DequantizeRows(const WeightView& w, int64_t first, int64_t count, float* dst, int64_t ld);

}  // namespace ropewire::kernels
