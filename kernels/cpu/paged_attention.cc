#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_block.h"
#include "kernels/cpu/rope_rotation.h"
#include "kernels/cpu/simd.h"
#include "kernels/weight_format.h"

namespace ropewire::kernels::cpu {
namespace {

// One unit of parallel work: a tile of consecutive query positions of one sequence, for all
// query heads that share one KV head.
struct WorkItem {
  int seq;
  int kv_head;
  int first_query;  // index within the sequence's query rows
  int num_queries;
};

// Per-thread scratch, reused across steps.
struct Scratch {
  std::vector<float> queries;         // [rows][head_dim], rotated and scaled
  std::vector<float> acc;             // [rows][head_dim]
  std::vector<float> row_max;         // [rows]
  std::vector<float> row_sum;         // [rows]
  std::vector<float> scores;          // [rows][block_size]
  std::vector<float> keys;            // [block_size][head_dim], rotated
  std::vector<float> widened_keys;    // [block_size][head_dim], 16-bit pages widened
  std::vector<float> widened_values;  // [block_size][head_dim], 16-bit pages widened
};

// The weight format that stores a KV dtype's elements (for the shared row conversions).
WeightFormat RowFormat(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kBF16: return WeightFormat::kBF16;
    case KvDtype::kF16: return WeightFormat::kF16;
    case KvDtype::kF32: break;
  }
  return WeightFormat::kF32;
}

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

ROPEWIRE_SIMD_CLONES
float Dot(const float* a, const float* b, int n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// acc = acc * rescale + Σ_t p[t] * v[t]
ROPEWIRE_SIMD_CLONES
void RescaleAccumulate(float* acc, float rescale, const float* p, const float* values,
                       int num_values, int head_dim) {
  if (rescale != 1.0f) {
#pragma omp simd
    for (int d = 0; d < head_dim; ++d) acc[d] *= rescale;
  }
  for (int t = 0; t < num_values; ++t) {
    const float w = p[t];
    if (w == 0.0f) continue;
    const float* v = values + int64_t(t) * head_dim;
#pragma omp simd
    for (int d = 0; d < head_dim; ++d) acc[d] += w * v[d];
  }
}

class TileAttention {
 public:
  TileAttention(const float* q, int64_t q_stride, KvLayerView<const void> layer,
                const KvGeometry& geometry, const RaggedBatchView& batch,
                const AttentionParams& params, float* out, int64_t out_stride)
      : q_(q),
        q_stride_(q_stride),
        layer_(layer),
        geo_(geometry),
        batch_(batch),
        params_(params),
        out_(out),
        out_stride_(out_stride),
        group_(params.num_heads / params.num_kv_heads),
        rope_(params.position && params.position->kind == PositionKind::kRope),
        score_bias_(params.position && (params.position->kind == PositionKind::kAlibi ||
                                        params.position->kind == PositionKind::kRelativeBias)),
        vectorised_(AttentionBlockAvailable(params.head_dim) &&
                    geometry.block_size <= kAttentionBlockKeys) {}

  void Run(const WorkItem& item) {
    const int d = params_.head_dim;
    const int rows = item.num_queries * group_;
    Scratch& s = ThreadScratch();
    s.queries.resize(int64_t(rows) * d);
    s.acc.assign(int64_t(rows) * d, 0.0f);
    s.row_max.assign(rows, -std::numeric_limits<float>::infinity());
    s.row_sum.assign(rows, 0.0f);
    s.scores.resize(int64_t(rows) * geo_.block_size);
    s.keys.resize(int64_t(geo_.block_size) * d);
    if (geo_.dtype != KvDtype::kF32) {
      s.widened_keys.resize(int64_t(geo_.block_size) * d);
      s.widened_values.resize(int64_t(geo_.block_size) * d);
    }

    const int query_len = batch_.QueryLen(item.seq);
    const int kv_len = batch_.kv_len[item.seq];
    const int first_cache_index = kv_len - query_len;  // cache index of query row 0
    const int offset = batch_.position_offset[item.seq];
    const RopeTable* table = nullptr;
    if (rope_) {
      table = params_.seq_rope_tables ? params_.seq_rope_tables[item.seq] : params_.rope_table;
    }
    LoadQueries(item, first_cache_index, offset, table, s.queries.data());

    // Keys visible to some row of this tile: [key_begin, key_end).
    const int key_end = first_cache_index + item.first_query + item.num_queries;
    int key_begin = 0;
    if (params_.sliding_window > 0) {
      key_begin = std::max(0, first_cache_index + item.first_query - params_.sliding_window + 1);
    }
    const int32_t* blocks = batch_.BlockTable(item.seq);
    for (int block = key_begin / geo_.block_size; block * geo_.block_size < key_end; ++block) {
      const int block_first = block * geo_.block_size;
      const int lo = std::max(key_begin, block_first) - block_first;
      const int hi = std::min(key_end, block_first + geo_.block_size) - block_first;
      const int64_t page =
          int64_t(blocks[block]) * geo_.BlockStride() + int64_t(item.kv_head) * geo_.HeadStride();
      const float* keys =
          LoadKeys(Element(layer_.keys, page), block_first, lo, hi, offset, table, s);
      const float* values = LoadValues(Element(layer_.values, page), lo, hi, s);
      if (vectorised_) {
        AttendBlockVectorised(item, first_cache_index, offset, block_first, lo, hi, keys, values,
                              s);
      } else {
        AttendBlock(item, first_cache_index, offset, block_first, lo, hi, keys, values, s);
      }
    }
    StoreOutputs(item, s);
  }

 private:
  void LoadQueries(const WorkItem& item, int first_cache_index, int offset, const RopeTable* table,
                   float* dst) const {
    const int d = params_.head_dim;
    const int row0 = batch_.query_start[item.seq] + item.first_query;
    for (int i = 0; i < item.num_queries; ++i) {
      const float* q_row = q_ + int64_t(row0 + i) * q_stride_;
      const int position = offset + first_cache_index + item.first_query + i;
      for (int g = 0; g < group_; ++g) {
        const int head = item.kv_head * group_ + g;
        float* dst_row = dst + int64_t(i * group_ + g) * d;
        const float* src = q_row + int64_t(head) * d;
        if (rope_) {
          ApplyRope(params_.position->rope, table->Cos(position), table->Sin(position), src,
                    dst_row, d);
        } else {
          std::memcpy(dst_row, src, sizeof(float) * d);
        }
        for (int c = 0; c < d; ++c) dst_row[c] *= params_.softmax_scale;
      }
    }
  }

  // The element `index` elements into untyped pages of the cache's dtype.
  const void* Element(const void* pages, int64_t index) const {
    return static_cast<const uint8_t*>(pages) + index * KvDtypeBytes(geo_.dtype);
  }

  // Rows [lo, hi) of a 16-bit block page widened to f32 in `dst` (indexed from slot 0).
  float* Widen(const void* page, int lo, int hi, std::vector<float>& dst) const {
    const int d = params_.head_dim;
    if (hi > lo) {
      DequantizeRow(RowFormat(geo_.dtype), Element(page, int64_t(lo) * d), int64_t(hi - lo) * d,
                    dst.data() + int64_t(lo) * d);
    }
    return dst.data();
  }

  // Returns keys [lo, hi) of a block in f32, rotated by position when the model uses RoPE; the
  // returned pointer is indexed from the block's slot 0.
  const float* LoadKeys(const void* page, int block_first, int lo, int hi, int offset,
                        const RopeTable* table, Scratch& s) const {
    const float* keys = geo_.dtype == KvDtype::kF32 ? static_cast<const float*>(page)
                                                    : Widen(page, lo, hi, s.widened_keys);
    if (!rope_ || params_.keys_prerotated) return keys;
    const int d = params_.head_dim;
    if (hi > lo) {
      ApplyRopeToRows(*table, offset + block_first + lo, keys + int64_t(lo) * d, d,
                      s.keys.data() + int64_t(lo) * d, d, hi - lo, d);
    }
    return s.keys.data();
  }

  const float* LoadValues(const void* page, int lo, int hi, Scratch& s) const {
    if (geo_.dtype == KvDtype::kF32) return static_cast<const float*>(page);
    return Widen(page, lo, hi, s.widened_values);
  }

  // Adds ALiBi's or T5's term to scores p[t_begin, t_end) of query head `head`; key t of the
  // block sits at position key_position0 + t.
  void AddScoreBias(int head, int query_position, int key_position0, int t_begin, int t_end,
                    float* p) const {
    const PositionEncoding& pe = *params_.position;
    if (pe.kind == PositionKind::kAlibi) {
      const float slope = pe.alibi.slopes[head];
      if (pe.alibi.bf16_key_position_form) {
        for (int t = t_begin; t < t_end; ++t) {
          p[t] += RoundToBfloat16(slope * float(key_position0 + t)) * pe.alibi.bias_scale;
        }
      } else {
        for (int t = t_begin; t < t_end; ++t) {
          p[t] += slope * float(key_position0 + t - query_position);
        }
      }
      return;
    }
    const RelativeBiasSpec& rb = pe.relative_bias;
    for (int t = t_begin; t < t_end; ++t) {
      const int bucket = T5RelativePositionBucket(
          key_position0 + t - query_position, rb.bidirectional, rb.num_buckets, rb.max_distance);
      p[t] += rb.table[int64_t(bucket) * rb.num_heads + head];
    }
  }

  // Keys [t_begin, t_end) of the block that query index `query_index` sees (empty when none).
  void VisibleKeys(int query_index, int block_first, int lo, int hi, int* t_begin,
                   int* t_end) const {
    *t_end = std::min(hi, query_index + 1 - block_first);
    *t_begin = lo;
    if (params_.sliding_window > 0) {
      *t_begin = std::max(lo, query_index - params_.sliding_window + 1 - block_first);
    }
  }

  // AttendBlock with the AVX-512 steps of attention_block.h: the scores of every row of the tile
  // that sees the block in one pass over its keys, then each row's softmax update. Keys before
  // `lo` are scored too (they sit in the same vector) and masked out by the update.
  void AttendBlockVectorised(const WorkItem& item, int first_cache_index, int offset,
                             int block_first, int lo, int hi, const float* keys,
                             const float* values, Scratch& s) const {
    const int d = params_.head_dim;
    const int query_index0 = first_cache_index + item.first_query;
    // Rows before this one end before the block (causal mask): they see none of its keys.
    const int first_row = std::max(0, block_first + lo - query_index0);
    if (first_row >= item.num_queries) return;
    const int rows = (item.num_queries - first_row) * group_;
    BlockScores(s.queries.data() + int64_t(first_row) * group_ * d, rows, d, keys, hi,
                s.scores.data() + int64_t(first_row) * group_ * geo_.block_size, geo_.block_size);
    for (int i = first_row; i < item.num_queries; ++i) {
      const int query_index = query_index0 + i;
      int t_begin, t_end;
      VisibleKeys(query_index, block_first, lo, hi, &t_begin, &t_end);
      if (t_end <= t_begin) continue;
      for (int g = 0; g < group_; ++g) {
        const int row = i * group_ + g;
        float* p = s.scores.data() + int64_t(row) * geo_.block_size;
        if (score_bias_) {
          AddScoreBias(item.kv_head * group_ + g, offset + query_index, offset + block_first,
                       t_begin, t_end, p);
        }
        SoftmaxAccumulateRow(p, t_begin, t_end, values, d, &s.row_max[row], &s.row_sum[row],
                             s.acc.data() + int64_t(row) * d);
      }
    }
  }

  void AttendBlock(const WorkItem& item, int first_cache_index, int offset, int block_first, int lo,
                   int hi, const float* keys, const float* values, Scratch& s) const {
    const int d = params_.head_dim;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int i = 0; i < item.num_queries; ++i) {
      const int query_index = first_cache_index + item.first_query + i;
      int t_begin, t_end;
      VisibleKeys(query_index, block_first, lo, hi, &t_begin, &t_end);
      if (t_end <= t_begin) continue;
      for (int g = 0; g < group_; ++g) {
        const int row = i * group_ + g;
        const float* qrow = s.queries.data() + int64_t(row) * d;
        float* p = s.scores.data() + int64_t(row) * geo_.block_size;
        float block_max = neg_inf;
        for (int t = t_begin; t < t_end; ++t) p[t] = Dot(qrow, keys + int64_t(t) * d, d);
        if (score_bias_) {
          AddScoreBias(item.kv_head * group_ + g, offset + query_index, offset + block_first,
                       t_begin, t_end, p);
        }
        for (int t = t_begin; t < t_end; ++t) block_max = std::max(block_max, p[t]);
        const float new_max = std::max(s.row_max[row], block_max);
        const float rescale = std::exp(s.row_max[row] - new_max);
        float block_sum = 0.0f;
        for (int t = t_begin; t < t_end; ++t) {
          p[t] = std::exp(p[t] - new_max);
          block_sum += p[t];
        }
        s.row_sum[row] = s.row_sum[row] * rescale + block_sum;
        s.row_max[row] = new_max;
        RescaleAccumulate(s.acc.data() + int64_t(row) * d, rescale, p + t_begin,
                          values + int64_t(t_begin) * d, t_end - t_begin, d);
      }
    }
  }

  void StoreOutputs(const WorkItem& item, const Scratch& s) const {
    const int d = params_.head_dim;
    const int row0 = batch_.query_start[item.seq] + item.first_query;
    for (int i = 0; i < item.num_queries; ++i) {
      float* out_row = out_ + int64_t(row0 + i) * out_stride_;
      for (int g = 0; g < group_; ++g) {
        const int row = i * group_ + g;
        const int head = item.kv_head * group_ + g;
        const float inv = s.row_sum[row] > 0.0f ? 1.0f / s.row_sum[row] : 0.0f;
        const float* acc = s.acc.data() + int64_t(row) * d;
        float* dst = out_row + int64_t(head) * d;
        for (int c = 0; c < d; ++c) dst[c] = acc[c] * inv;
      }
    }
  }

  const float* q_;
  int64_t q_stride_;
  KvLayerView<const void> layer_;
  const KvGeometry& geo_;
  const RaggedBatchView& batch_;
  const AttentionParams& params_;
  float* out_;
  int64_t out_stride_;
  int group_;
  bool rope_;
  bool score_bias_;
  bool vectorised_;  // AVX-512 block steps (attention_block.h) for this head_dim and block size
};

// Query positions per work item: enough rows to amortise rotating each key block, few enough
// that prefill of one sequence still splits across threads.
int QueryTileSize(int group) { return std::max(1, 32 / std::max(1, group)); }

}  // namespace

void WriteKv(const float* k, int64_t k_stride, const float* v, int64_t v_stride,
             const int32_t* slots, int64_t rows, const KvGeometry& geometry,
             KvLayerView<void> layer) {
  const int d = geometry.head_dim;
  const int element = KvDtypeBytes(geometry.dtype);
  const WeightFormat format = RowFormat(geometry.dtype);
  auto* keys = static_cast<uint8_t*>(layer.keys);
  auto* values = static_cast<uint8_t*>(layer.values);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t block = slots[r] / geometry.block_size;
    const int64_t offset = slots[r] % geometry.block_size;
    for (int h = 0; h < geometry.num_kv_heads; ++h) {
      const int64_t dst =
          (block * geometry.BlockStride() + h * geometry.HeadStride() + offset * d) * element;
      QuantizeRow(format, k + r * k_stride + int64_t(h) * d, d, keys + dst);
      QuantizeRow(format, v + r * v_stride + int64_t(h) * d, d, values + dst);
    }
  }
}

void PagedAttention(const float* q, int64_t q_stride, KvLayerView<const void> layer,
                    const KvGeometry& geometry, const RaggedBatchView& batch,
                    const AttentionParams& params, float* out, int64_t out_stride) {
  const int group = params.num_heads / params.num_kv_heads;
  const int tile = QueryTileSize(group);
  std::vector<WorkItem> items;
  for (int s = 0; s < batch.num_seqs; ++s) {
    const int query_len = batch.QueryLen(s);
    for (int first = 0; first < query_len; first += tile) {
      for (int h = 0; h < params.num_kv_heads; ++h) {
        items.push_back({s, h, first, std::min(tile, query_len - first)});
      }
    }
  }
  TileAttention attention(q, q_stride, layer, geometry, batch, params, out, out_stride);
  const int64_t num_items = static_cast<int64_t>(items.size());
#pragma omp parallel for schedule(dynamic, 1) if (num_items > 1)
  for (int64_t i = 0; i < num_items; ++i) attention.Run(items[i]);
}

}  // namespace ropewire::kernels::cpu
