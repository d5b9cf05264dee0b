// Paged attention against a plain reference written in double precision: contiguous keys,
// rotation by absolute position, full softmax. Covers GQA, both RoPE layouts, partial rotary,
// per-sequence RoPE tables (dynamic NTK, LongRoPE), ALiBi and T5 score biases, no position term,
// prefill chunks beside decodes, position offsets, sliding windows and random block placement.
#include <cmath>
#include <numeric>
#include <random>

#include "gtest/gtest.h"
#include "kernels/cpu/attention_block.h"
#include "kernels/cpu/paged_attention.h"

namespace ropewire::kernels::cpu {
namespace {

struct Shape {
  int num_heads, num_kv_heads, head_dim, rotary_dim;
  RopeLayout layout;
  bool rope;
  int sliding_window;
};

struct SeqSpec {
  int cached;  // tokens already in the cache
  int query;   // tokens processed this step
  int offset;  // position of cache index 0
};

// Reference rotation of one head vector, from the inverse frequencies the sequence's length
// selects, in double.
void RotateReference(const RopeSpec& spec, int64_t seq_length, int position,
                     std::vector<double>& x) {
  const int half = spec.rotary_dim / 2;
  const std::vector<float> inv_freq = InverseFrequenciesForLength(spec, seq_length);
  for (int k = 0; k < half; ++k) {
    const double angle = double(position) * double(inv_freq[k]);
    const double c = std::cos(angle) * spec.attention_scaling;
    const double s = std::sin(angle) * spec.attention_scaling;
    const int i = spec.layout == RopeLayout::kNeox ? k : 2 * k;
    const int j = spec.layout == RopeLayout::kNeox ? k + half : 2 * k + 1;
    const double a = x[i], b = x[j];
    x[i] = a * c - b * s;
    x[j] = b * c + a * s;
  }
}

class AttentionHarness {
 public:
  AttentionHarness(const Shape& shape, const std::vector<SeqSpec>& seqs, int block_size,
                   uint32_t seed)
      : shape_(shape), seqs_(seqs), rng_(seed) {
    geometry_ = {0, block_size, shape.num_kv_heads, shape.head_dim};
    position_.kind = shape.rope ? PositionKind::kRope : PositionKind::kNone;
    position_.rope.rotary_dim = shape.rotary_dim;
    position_.rope.layout = shape.layout;
    for (int k = 0; k < shape.rotary_dim / 2; ++k) {
      position_.rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * k / shape.rotary_dim));
    }
    BuildCache();
  }

  // Replaces the position encoding the shape implies (ALiBi, T5 bias, scaled RoPE tables).
  void SetPosition(const PositionEncoding& position) { position_ = position; }

  // Runs the kernel and returns the largest relative error against the reference.
  double MaxError() {
    RopeTableSet tables(position_.rope);
    tables.Prepare(View());
    AttentionParams params;
    params.num_heads = shape_.num_heads;
    params.num_kv_heads = shape_.num_kv_heads;
    params.head_dim = shape_.head_dim;
    params.softmax_scale = 1.0f / std::sqrt(float(shape_.head_dim));
    params.sliding_window = shape_.sliding_window;
    params.position = &position_;
    params.seq_rope_tables = tables.per_sequence();
    const int q_width = shape_.num_heads * shape_.head_dim;
    std::vector<float> out(size_t(query_start_.back()) * q_width, NAN);
    PagedAttention(queries_.data(), q_width, {keys_.data(), values_.data()}, geometry_, View(),
                   params, out.data(), q_width);
    return CompareWithReference(out, params.softmax_scale);
  }

  // Runs the kernel with every position offset moved by `shift` and returns the outputs.
  std::vector<float> Run(int shift) {
    for (auto& s : seqs_) s.offset += shift;
    RopeTable table(position_.rope);
    if (position_.kind == PositionKind::kRope) table.EnsureCapacity(100000);
    AttentionParams params;
    params.num_heads = shape_.num_heads;
    params.num_kv_heads = shape_.num_kv_heads;
    params.head_dim = shape_.head_dim;
    params.softmax_scale = 1.0f / std::sqrt(float(shape_.head_dim));
    params.sliding_window = shape_.sliding_window;
    params.position = &position_;
    params.rope_table = &table;
    offsets_.clear();
    for (const auto& s : seqs_) offsets_.push_back(s.offset);
    const int q_width = shape_.num_heads * shape_.head_dim;
    std::vector<float> out(size_t(query_start_.back()) * q_width);
    PagedAttention(queries_.data(), q_width, {keys_.data(), values_.data()}, geometry_, View(),
                   params, out.data(), q_width);
    for (auto& s : seqs_) s.offset -= shift;
    return out;
  }

 private:
  void BuildCache() {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int total_blocks = 0;
    for (const auto& s : seqs_) {
      total_blocks += (s.cached + s.query + geometry_.block_size - 1) / geometry_.block_size;
    }
    geometry_.num_blocks = total_blocks + 3;  // a few unused blocks
    std::vector<int32_t> free(geometry_.num_blocks);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), rng_);
    max_blocks_ = 0;
    for (const auto& s : seqs_) {
      max_blocks_ = std::max(
          max_blocks_, (s.cached + s.query + geometry_.block_size - 1) / geometry_.block_size);
    }
    keys_.assign(geometry_.LayerElements(), NAN);  // unwritten slots must never be read
    values_.assign(geometry_.LayerElements(), NAN);
    const int q_width = shape_.num_heads * shape_.head_dim;
    query_start_ = {0};
    for (const auto& s : seqs_) {
      const int len = s.cached + s.query;
      const int blocks = (len + geometry_.block_size - 1) / geometry_.block_size;
      std::vector<int32_t> table(max_blocks_, -1);
      for (int b = 0; b < blocks; ++b) {
        table[b] = free.back();
        free.pop_back();
      }
      tables_.insert(tables_.end(), table.begin(), table.end());
      for (int i = 0; i < len; ++i) {
        for (int h = 0; h < shape_.num_kv_heads; ++h) {
          const int64_t slot = table[i / geometry_.block_size] * geometry_.BlockStride() +
                               h * geometry_.HeadStride() +
                               (i % geometry_.block_size) * shape_.head_dim;
          for (int d = 0; d < shape_.head_dim; ++d) {
            keys_[slot + d] = normal(rng_);
            values_[slot + d] = normal(rng_);
          }
        }
      }
      for (int i = 0; i < s.query * q_width; ++i) queries_.push_back(normal(rng_));
      query_start_.push_back(query_start_.back() + s.query);
      kv_len_.push_back(len);
      offsets_.push_back(s.offset);
    }
  }

  RaggedBatchView View() const {
    RaggedBatchView view;
    view.num_seqs = static_cast<int>(seqs_.size());
    view.query_start = query_start_.data();
    view.kv_len = kv_len_.data();
    view.position_offset = offsets_.data();
    view.block_tables = tables_.data();
    view.max_blocks_per_seq = max_blocks_;
    return view;
  }

  std::vector<double> Head(const std::vector<float>& pool, int seq, int index, int kv_head) const {
    const int32_t* table = tables_.data() + size_t(seq) * max_blocks_;
    const int64_t slot = table[index / geometry_.block_size] * geometry_.BlockStride() +
                         kv_head * geometry_.HeadStride() +
                         (index % geometry_.block_size) * shape_.head_dim;
    return std::vector<double>(pool.begin() + slot, pool.begin() + slot + shape_.head_dim);
  }

  double CompareWithReference(const std::vector<float>& out, float scale) const {
    const int d = shape_.head_dim;
    const int group = shape_.num_heads / shape_.num_kv_heads;
    double worst = 0.0;
    for (size_t s = 0; s < seqs_.size(); ++s) {
      const SeqSpec& spec = seqs_[s];
      for (int i = 0; i < spec.query; ++i) {
        const int index = spec.cached + i;
        const int row = query_start_[s] + i;
        for (int h = 0; h < shape_.num_heads; ++h) {
          std::vector<double> q(queries_.begin() + (size_t(row) * shape_.num_heads + h) * d,
                                queries_.begin() + (size_t(row) * shape_.num_heads + h + 1) * d);
          const int64_t length = spec.offset + spec.cached + spec.query;
          const bool rope = position_.kind == PositionKind::kRope;
          if (rope) RotateReference(position_.rope, length, spec.offset + index, q);
          const int first =
              shape_.sliding_window > 0 ? std::max(0, index - shape_.sliding_window + 1) : 0;
          std::vector<double> scores;
          for (int j = first; j <= index; ++j) {
            std::vector<double> k = Head(keys_, s, j, h / group);
            if (rope) RotateReference(position_.rope, length, spec.offset + j, k);
            scores.push_back(std::inner_product(q.begin(), q.end(), k.begin(), 0.0) * scale +
                             ReferenceBias(h, spec.offset + index, spec.offset + j));
          }
          const double max_score = *std::max_element(scores.begin(), scores.end());
          double sum = 0.0;
          for (double& x : scores) sum += (x = std::exp(x - max_score));
          std::vector<double> expected(d, 0.0);
          for (int j = first; j <= index; ++j) {
            const std::vector<double> v = Head(values_, s, j, h / group);
            for (int c = 0; c < d; ++c) expected[c] += scores[j - first] / sum * v[c];
          }
          const float* actual = out.data() + (size_t(row) * shape_.num_heads + h) * d;
          for (int c = 0; c < d; ++c) {
            if (!std::isfinite(actual[c])) return INFINITY;
            worst =
                std::max(worst, std::abs(actual[c] - expected[c]) / (1.0 + std::abs(expected[c])));
          }
        }
      }
    }
    return worst;
  }

  double ReferenceBias(int head, int query_position, int key_position) const {
    if (position_.kind == PositionKind::kAlibi) {
      const AlibiSpec& alibi = position_.alibi;
      if (alibi.bf16_key_position_form) {
        return double(RoundToBfloat16(alibi.slopes[head] * float(key_position))) * alibi.bias_scale;
      }
      return double(alibi.slopes[head]) * (key_position - query_position);
    }
    if (position_.kind == PositionKind::kRelativeBias) {
      const RelativeBiasSpec& rb = position_.relative_bias;
      const int bucket = T5RelativePositionBucket(key_position - query_position, rb.bidirectional,
                                                  rb.num_buckets, rb.max_distance);
      return rb.table[size_t(bucket) * rb.num_heads + head];
    }
    return 0.0;
  }

  Shape shape_;
  std::vector<SeqSpec> seqs_;
  std::mt19937 rng_;
  KvGeometry geometry_;
  PositionEncoding position_;
  std::vector<float> keys_, values_, queries_;
  std::vector<int32_t> query_start_, kv_len_, offsets_, tables_;
  int max_blocks_ = 0;
};

const std::vector<SeqSpec> kMixedBatch = {
    {0, 37, 0},    // a whole prompt
    {40, 1, 0},    // a decode
    {16, 9, 5},    // a prompt chunk after cached blocks, shifted positions
    {63, 1, 300},  // a decode at a large offset
    {0, 1, 0},     // a one-token prompt
};

class AttentionShapes : public ::testing::TestWithParam<Shape> {};

// Block sizes up to 16 with a head_dim that is a multiple of 16 run the AVX-512 block steps
// (attention_block.h) where the CPU has them; 32 and the other head dims the portable loop.
TEST_P(AttentionShapes, MatchesReference) {
  for (int block_size : {1, 4, 16, 32}) {
    AttentionHarness harness(GetParam(), kMixedBatch, block_size, 1234 + block_size);
    EXPECT_LE(harness.MaxError(), 2e-5) << "block size " << block_size;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, AttentionShapes,
    ::testing::Values(Shape{4, 4, 64, 64, RopeLayout::kNeox, true, 0},         // MHA
                      Shape{8, 2, 64, 64, RopeLayout::kNeox, true, 0},         // GQA 4
                      Shape{8, 1, 128, 128, RopeLayout::kNeox, true, 0},       // MQA
                      Shape{4, 2, 80, 32, RopeLayout::kNeox, true, 0},         // partial rotary
                      Shape{4, 2, 64, 16, RopeLayout::kInterleaved, true, 0},  // GPT-J style
                      Shape{4, 2, 96, 96, RopeLayout::kInterleaved, true, 0},
                      Shape{6, 2, 256, 256, RopeLayout::kNeox, true, 0},
                      Shape{4, 2, 40, 40, RopeLayout::kNeox, true, 0},    // portable loop
                      Shape{4, 2, 64, 0, RopeLayout::kNeox, false, 0},    // no position term
                      Shape{4, 2, 64, 64, RopeLayout::kNeox, true, 7}));  // sliding window

TEST(AttentionBlockSteps, AvailableExactlyForWholeVectorsOnAvx512) {
#if defined(__x86_64__) && defined(__GNUC__)
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512) GTEST_SKIP() << "no AVX-512F on this CPU: the portable loop serves every shape";
  for (int d : {16, 64, 80, 96, 128, 256}) EXPECT_TRUE(AttentionBlockAvailable(d)) << d;
#endif
  for (int d : {0, 8, 40, 100, 272}) EXPECT_FALSE(AttentionBlockAvailable(d)) << d;
}

// A long prompt beside a decode: tiles of 32 rows (GQA 1) and 8 rows (GQA 4) over many blocks.
TEST(AttentionBlockSteps, LongPromptMatchesReference) {
  const std::vector<SeqSpec> batch = {{0, 150, 0}, {200, 1, 3}, {70, 33, 11}};
  for (Shape shape : {Shape{4, 4, 64, 64, RopeLayout::kNeox, true, 0},
                      Shape{8, 2, 128, 128, RopeLayout::kNeox, true, 0},
                      Shape{8, 2, 128, 128, RopeLayout::kNeox, true, 50}}) {
    for (int block_size : {8, 16}) {
      AttentionHarness harness(shape, batch, block_size, 77 + block_size);
      EXPECT_LE(harness.MaxError(), 2e-5) << "head_dim " << shape.head_dim << ", window "
                                          << shape.sliding_window << ", block size " << block_size;
    }
  }
}

// Decision 1: for relative encodings, moving every position by the same amount changes nothing.
TEST(AttentionShiftInvariance, RopeDependsOnlyOnDistance) {
  for (RopeLayout layout : {RopeLayout::kNeox, RopeLayout::kInterleaved}) {
    AttentionHarness harness({8, 2, 64, 32, layout, true, 0}, kMixedBatch, 4, 99);
    const std::vector<float> base = harness.Run(0);
    for (int shift : {1, 17, 4096}) {
      const std::vector<float> shifted = harness.Run(shift);
      double worst = 0.0;
      for (size_t i = 0; i < base.size(); ++i) {
        worst = std::max(worst, double(std::abs(base[i] - shifted[i])));
      }
      // Angles grow with position, so fp32 rounding of the larger angles costs a little.
      EXPECT_LE(worst, 2e-3) << "shift " << shift;
    }
  }
}

PositionEncoding Alibi(int num_heads) {
  PositionEncoding pe;
  pe.kind = PositionKind::kAlibi;
  pe.alibi.slopes = AlibiSlopes(num_heads);
  return pe;
}

TEST(AttentionScoreBias, AlibiMatchesReference) {
  for (int heads : {6, 12}) {
    for (int block_size : {1, 4, 16}) {
      AttentionHarness harness({heads, heads / 2, 32, 0, RopeLayout::kNeox, false, 0}, kMixedBatch,
                               block_size, 7 + block_size);
      harness.SetPosition(Alibi(heads));
      EXPECT_LE(harness.MaxError(), 2e-5) << heads << " heads, block size " << block_size;
    }
  }
}

TEST(AttentionScoreBias, FalconAlibiFormMatchesReference) {
  PositionEncoding pe = Alibi(6);
  for (float& s : pe.alibi.slopes) s = RoundToBfloat16(s);
  pe.alibi.bf16_key_position_form = true;
  pe.alibi.bias_scale = 1.0f / std::sqrt(16.0f);
  AttentionHarness harness({6, 6, 16, 0, RopeLayout::kNeox, false, 0}, kMixedBatch, 4, 5);
  harness.SetPosition(pe);
  EXPECT_LE(harness.MaxError(), 2e-5);
}

TEST(AttentionScoreBias, T5RelativeBiasMatchesReference) {
  PositionEncoding pe;
  pe.kind = PositionKind::kRelativeBias;
  pe.relative_bias.num_heads = 4;
  pe.relative_bias.bidirectional = false;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int i = 0; i < pe.relative_bias.num_buckets * 4; ++i)
    pe.relative_bias.table.push_back(normal(rng));
  AttentionHarness harness({4, 2, 32, 0, RopeLayout::kNeox, false, 0}, kMixedBatch, 4, 11);
  harness.SetPosition(pe);
  EXPECT_LE(harness.MaxError(), 2e-5);
}

// Sequences of one step with different lengths get different tables (DESIGN.md decision 1).
TEST(AttentionLengthDependentRope, DynamicNtkAndLongRopePerSequence) {
  PositionEncoding dynamic;
  dynamic.kind = PositionKind::kRope;
  dynamic.rope.rotary_dim = 32;
  dynamic.rope.theta = 10000.0;
  dynamic.rope.inv_freq = DefaultInverseFrequencies(10000.0, 32);
  dynamic.rope.length_rule = RopeLengthRule::kDynamicNtk;
  dynamic.rope.dynamic_factor = 2.0;
  dynamic.rope.dynamic_base_length = 30;  // kMixedBatch has sequences on both sides
  PositionEncoding longrope = dynamic;
  longrope.rope.length_rule = RopeLengthRule::kLongRope;
  longrope.rope.long_threshold = 30;
  longrope.rope.attention_scaling = 1.19f;
  for (float inv : dynamic.rope.inv_freq) longrope.rope.long_inv_freq.push_back(inv / 3.0f);
  for (const PositionEncoding& pe : {dynamic, longrope}) {
    AttentionHarness harness({8, 2, 64, 32, RopeLayout::kNeox, true, 0}, kMixedBatch, 4, 21);
    harness.SetPosition(pe);
    EXPECT_LE(harness.MaxError(), 2e-5);
  }
}

// Decision 2: ALiBi depends only on query - key distance.
TEST(AttentionShiftInvariance, AlibiDependsOnlyOnDistance) {
  AttentionHarness harness({12, 4, 32, 0, RopeLayout::kNeox, false, 0}, kMixedBatch, 4, 98);
  harness.SetPosition(Alibi(12));
  const std::vector<float> base = harness.Run(0);
  for (int shift : {1, 17, 4096}) {
    const std::vector<float> shifted = harness.Run(shift);
    double worst = 0.0;
    for (size_t i = 0; i < base.size(); ++i) {
      worst = std::max(worst, double(std::abs(base[i] - shifted[i])));
    }
    EXPECT_LE(worst, 1e-5) << "shift " << shift;
  }
}

TEST(WriteKv, PlacesRowsInTheirSlots) {
  KvGeometry geometry{3, 2, 2, 4};
  std::vector<float> keys(geometry.LayerElements(), 0.0f), values(geometry.LayerElements(), 0.0f);
  std::vector<float> k(2 * 8), v(2 * 8);
  std::iota(k.begin(), k.end(), 1.0f);
  std::iota(v.begin(), v.end(), 100.0f);
  const std::vector<int32_t> slots = {5, 0};  // row 0 → block 2 offset 1, row 1 → block 0 offset 0
  WriteKv(k.data(), 8, v.data(), 8, slots.data(), 2, geometry, {keys.data(), values.data()});
  // Row 0, kv head 1 lands at block 2, head 1, offset 1.
  const int64_t at = 2 * geometry.BlockStride() + 1 * geometry.HeadStride() + 1 * 4;
  EXPECT_EQ(keys[at], 5.0f);
  EXPECT_EQ(values[at + 3], 107.0f);
  EXPECT_EQ(keys[0], 9.0f);  // row 1, head 0 at block 0 offset 0
}

}  // namespace
}  // namespace ropewire::kernels::cpu
