// Vectorised inner steps of the CPU paged attention for one KV block (at most 16 keys): the
// scores of a tile of query rows against the block's keys, and each row's online-softmax update
// with the block's values. Per (query row, key) the scalar formulation spends a horizontal dot
// product, a scalar exp and a read-modify-write of the accumulator in memory; here 16 keys share
// every vector instruction and the accumulator stays in registers, which is what makes prefill
// attention cheap next to the projections.
#pragma once

#include <cstdint>

namespace ropewire::kernels::cpu {

// Most keys one call handles: one 512-bit vector of scores per query row.
inline constexpr int kAttentionBlockKeys = 16;
// Largest head_dim the vectorised steps take (accumulators of one row live in registers).
inline constexpr int kAttentionBlockMaxHeadDim = 256;

// Whether this machine and this head_dim run the vectorised steps (they need AVX-512F and a
// head_dim that is a multiple of 16, at most kAttentionBlockMaxHeadDim).
bool AttentionBlockAvailable(int head_dim);

// scores[r * score_stride + t] = queries[r * head_dim ...] · keys[t * head_dim ...] for
// r < rows and t < num_keys (<= kAttentionBlockKeys). Queries are already rotated and scaled;
// keys are the block's rows, contiguous.
void BlockScores(const float* queries, int rows, int head_dim, const float* keys, int num_keys,
                 float* scores, int score_stride);

// One query row's online-softmax step over the keys [t_begin, t_end) of a block: with its
// scores `p` (indexed by key slot; overwritten with the unnormalised probabilities), the
// running maximum and sum of the row are updated and acc[head_dim] becomes
// acc * exp(old_max - new_max) + Σ_t exp(p[t] - new_max) · values[t].
void SoftmaxAccumulateRow(float* p, int t_begin, int t_end, const float* values, int head_dim,
                          float* row_max, float* row_sum, float* acc);

}  // namespace ropewire::kernels::cpu
