#include "kernels/cpu/weight_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/cpu/activation_blocks.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/weight_gemv_avx2.h"
#include "kernels/float16.h"

namespace ropewire::kernels::cpu {
namespace {

// Rows are handed to threads in blocks of about this many weight bytes, guided (long runs first,
// shrinking blocks to even out the finish), as the f32 skinny path does (skinny_gemm.cc).
constexpr int64_t kBlockBytes = int64_t(32) << 10;
// Below this many weight bytes one thread does it all.
constexpr int64_t kParallelBytes = int64_t(128) << 10;
// Prefill widens this many bytes of f32 weight rows at a time (per tile, in cache).
constexpr int64_t kTileBytes = int64_t(2) << 20;

std::atomic<bool> g_portable{false};

// The activations as the decode kernels read them: f32 rows, and for block formats their
// quantized blocks, kQuantBlock values each.
struct DecodeActivations {
  const float* a = nullptr;
  int64_t lda = 0;
  std::vector<ActivationBlock> blocks;  // [m][k / kQuantBlock]
};

// Block b of a quantized row as its 32 integer values (for Q4_0 already minus 8), scale and
// minimum (0 unless Q4_1).
void BlockValues(WeightFormat format, const uint8_t* row, int64_t b, int* q, float* d, float* m) {
  *m = 0.0f;
  if (format == WeightFormat::kQ8_0) {
    const auto& block = reinterpret_cast<const BlockQ8_0*>(row)[b];
    *d = HalfToFloat(block.d);
    for (int j = 0; j < kQuantBlock; ++j) q[j] = block.qs[j];
    return;
  }
  const uint8_t* qs;
  int bias = 0;
  if (format == WeightFormat::kQ4_0) {
    const auto& block = reinterpret_cast<const BlockQ4_0*>(row)[b];
    *d = HalfToFloat(block.d);
    qs = block.qs;
    bias = 8;
  } else {
    const auto& block = reinterpret_cast<const BlockQ4_1*>(row)[b];
    *d = HalfToFloat(block.d);
    *m = HalfToFloat(block.m);
    qs = block.qs;
  }
  for (int j = 0; j < kQuantBlock / 2; ++j) {
    q[j] = (qs[j] & 0x0F) - bias;
    q[j + 16] = (qs[j] >> 4) - bias;
  }
}

// The dot product the SIMD block kernels compute, in the same arithmetic: integer sums per
// block, each scaled by the weight's and the activations' scales.
float PortableBlockDot(WeightFormat format, const uint8_t* row, const ActivationBlock* act,
                       int64_t blocks) {
  float sum = 0.0f;
  int q[kQuantBlock];
  for (int64_t b = 0; b < blocks; ++b) {
    float d, m;
    BlockValues(format, row, b, q, &d, &m);
    int dot = 0;
    for (int j = 0; j < kQuantBlock; ++j) dot += q[j] * act[b].qs[j];
    sum += float(dot) * (d * act[b].d) + m * act[b].sum;
  }
  return sum;
}

// Portable decode kernel: 16-bit rows widened to f32, block rows as integer dot products.
void PortableRows(const DecodeActivations& act, const WeightView& w, float* c, int64_t ldc,
                  int64_t m, int64_t row_begin, int64_t row_end, bool accumulate) {
  thread_local std::vector<float> row;
  const int64_t blocks = w.cols / kQuantBlock;
  for (int64_t n = row_begin; n < row_end; ++n) {
    if (!IsQuantized(w.format)) {
      row.resize(w.cols);
      DequantizeRow(w.format, w.Row(n), w.cols, row.data());
    }
    for (int64_t i = 0; i < m; ++i) {
      float sum = 0.0f;
      if (IsQuantized(w.format)) {
        sum = PortableBlockDot(w.format, w.Row(n), act.blocks.data() + i * blocks, blocks);
      } else {
        const float* a = act.a + i * act.lda;
        for (int64_t j = 0; j < w.cols; ++j) sum += a[j] * row[j];
      }
      float& out = c[i * ldc + n];
      out = accumulate ? out + sum : sum;
    }
  }
}

// The rows [row_begin, row_end) of C by whichever decode kernel serves this format and machine.
void DecodeRows(const DecodeActivations& act, const WeightView& w, float* c, int64_t ldc, int64_t m,
                int64_t row_begin, int64_t row_end, bool accumulate) {
  if (!g_portable.load(std::memory_order_relaxed) && WeightSimdKernelsAvailable()) {
    GemvRowsAvx2(act.a, act.lda, act.blocks.data(), w, c, ldc, m, row_begin, row_end, accumulate);
    return;
  }
  PortableRows(act, w, c, ldc, m, row_begin, row_end, accumulate);
}

void Decode(const float* a, int64_t lda, const WeightView& w, float* c, int64_t ldc, int64_t m,
            bool accumulate) {
  DecodeActivations act;
  act.a = a;
  act.lda = lda;
  if (IsQuantized(w.format)) {
    const int64_t blocks_per_row = w.cols / kQuantBlock;
    act.blocks.resize(m * blocks_per_row);
    for (int64_t i = 0; i < m; ++i) {
      QuantizeActivations(a + i * lda, w.cols, act.blocks.data() + i * blocks_per_row);
    }
  }
  const int64_t row_bytes = std::max<int64_t>(1, w.row_bytes());
  const int64_t rows_per_block = std::max<int64_t>(8, kBlockBytes / row_bytes / 8 * 8);
  const int64_t blocks = (w.rows + rows_per_block - 1) / rows_per_block;
  const bool parallel = blocks > 1 && w.rows * row_bytes >= kParallelBytes;
#pragma omp parallel for schedule(guided) if (parallel)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t begin = block * rows_per_block;
    DecodeRows(act, w, c, ldc, m, begin, std::min(w.rows, begin + rows_per_block), accumulate);
  }
}

// Prefill: tiles of W widened to f32 (in parallel), each multiplied by the f32 GEMM.
void Prefill(const float* a, int64_t lda, const WeightView& w, float* c, int64_t ldc, int64_t m,
             bool accumulate) {
  const int64_t k = std::max<int64_t>(1, w.cols);
  const int64_t tile_rows =
      std::max<int64_t>(32, kTileBytes / (k * int64_t(sizeof(float))) / 32 * 32);
  thread_local std::vector<float> tile;
  tile.resize(std::min(tile_rows, w.rows) * k);
  for (int64_t first = 0; first < w.rows; first += tile_rows) {
    const int64_t rows = std::min(tile_rows, w.rows - first);
    float* dst = tile.data();
#pragma omp parallel for schedule(static) if (rows * k >= (int64_t(1) << 16))
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(w.format, w.Row(first + r), k, dst + r * k);
    }
    MatMulTransposedB(a, lda, tile.data(), k, c + first, ldc, m, rows, k, accumulate);
  }
}

}  // namespace

bool WeightSimdKernelsAvailable() { return WeightGemvAvx2Available(); }

void SetWeightKernelsForTesting(WeightKernels kernels) {
  g_portable.store(kernels == WeightKernels::kPortable, std::memory_order_relaxed);
}

void MatMulWeight(const float* a, int64_t lda, const WeightView& w, float* c, int64_t ldc,
                  int64_t m, bool accumulate) {
  if (m <= 0 || w.rows <= 0) return;
  if (w.format == WeightFormat::kF32) {
    MatMulTransposedB(a, lda, static_cast<const float*>(w.data), w.cols, c, ldc, m, w.rows, w.cols,
                      accumulate);
    return;
  }
  if (m <= kWeightGemvMaxRows) {
    Decode(a, lda, w, c, ldc, m, accumulate);
  } else {
    Prefill(a, lda, w, c, ldc, m, accumulate);
  }
}

}  // namespace ropewire::kernels::cpu
