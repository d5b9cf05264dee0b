// Vectorised passes over one row of logits, for the sampler: at a 128k vocabulary a row is
// 512 KB, and every pass over it costs microseconds per generated token.
#pragma once

#include <cstdint>
#include <vector>

namespace ropewire::model {

// Values per chunk: the unit ScanRow summarises, so that later passes can skip chunks that hold
// nothing above a threshold and find a cumulative mass chunk by chunk.
inline constexpr int64_t kScanChunk = 64;

inline int64_t ScanChunks(int64_t n) { return (n + kScanChunk - 1) / kScanChunk; }

// One pass over a row: each chunk's largest value (chunk_max) and the sum over the chunk of
// exp((x_i - chunk_max) · inv_temperature) (chunk_sum), both ScanChunks(n) entries, from the same
// registers, so the row is read from memory once. Returns the row's largest value. The
// exponential is a polynomial one (relative error below 3e-7).
float ScanRow(const float* x, int64_t n, float inv_temperature, float* chunk_max, float* chunk_sum);

// Each chunk's mass relative to the row's largest value `max`:
// mass_c = chunk_sum_c · exp((chunk_max_c - max) · inv_temperature). Returns their total.
double ChunkMasses(const float* chunk_max, const float* chunk_sum, int64_t chunks, float max,
                   float inv_temperature, double* mass);

// e_i = exp((x_i - max) · inv_temperature) for i in [begin, end).
void ExpRange(const float* x, int64_t begin, int64_t end, float max, float inv_temperature,
              float* e);

// Σ exp((x_i - max) · inv_temperature) over the x_i >= floor, for x_i <= max, summed in double
// per chunk.
double SumExp(const float* x, int64_t n, float max, float inv_temperature, float floor);

// Replaces `ids` with the i where x_i >= threshold, in increasing order, reading only the
// chunks whose maximum reaches the threshold.
void GatherAtLeast(const float* x, int64_t n, const float* chunk_max, float threshold,
                   std::vector<int32_t>* ids);

// The first index of the largest value, in one pass.
int64_t ArgMaxOf(const float* x, int64_t n);

}  // namespace ropewire::model
