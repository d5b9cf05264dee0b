// The CUDA paged attention and KV append against the CPU reference (kernels/cpu), on random
// inputs rounded to bf16 / fp16 and given to both. Every case also checks that each output
// element was written, that nothing outside the output rows changed (sentinels in the row
// padding and in guard regions before and after), and that no NaN appears although unused page
// slots and the padding of the query rows hold NaN. Covers mixed batches of decodes and prefill
// chunks with position offsets and shuffled blocks, every head dim, GQA groups 1 to 71, both RoPE
// layouts, partial rotary, per-sequence tables (dynamic NTK, LongRoPE), ALiBi in both forms, T5
// buckets, no position term, sliding windows, block sizes 1 to 64, and a 32k-token decode that
// the plan splits into partitions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/paged_attention.h"
#include "tests/kernels/cuda/gpu_test_util.h"

namespace ropewire::kernels::cuda {
namespace {

// ---- Storage types on the host. ----

template <typename T>
struct Storage;
template <>
struct Storage<__nv_bfloat16> {
  static constexpr const char* kName = "bf16";
  static constexpr uint16_t kSentinelBits = 0xC2F6;  // -123: no attention output comes near it
  static constexpr uint16_t kNanBits = 0x7FC0;
  static constexpr double kRelativeTolerance = 1.0 / 256;  // 2x bf16's rounding
  static constexpr double kNormTolerance = 1e-2;
  static __nv_bfloat16 From(float x) { return __float2bfloat16(x); }
  static float To(__nv_bfloat16 x) { return __bfloat162float(x); }
};
template <>
struct Storage<__half> {
  static constexpr const char* kName = "fp16";
  static constexpr uint16_t kSentinelBits = 0xD7B0;  // -123
  static constexpr uint16_t kNanBits = 0x7E00;
  static constexpr double kRelativeTolerance = 1.0 / 1024;  // 2x fp16's rounding
  static constexpr double kNormTolerance = 2e-3;
  static __half From(float x) { return __float2half(x); }
  static float To(__half x) { return __half2float(x); }
};

template <typename T>
T FromBits(uint16_t bits) {
  T value;
  std::memcpy(static_cast<void*>(&value), &bits, sizeof(value));
  return value;
}
template <typename T>
uint16_t Bits(T value) {
  uint16_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

template <typename T>
std::vector<T> ToStorage(const std::vector<float>& values) {
  std::vector<T> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    out[i] =
        std::isnan(values[i]) ? FromBits<T>(Storage<T>::kNanBits) : Storage<T>::From(values[i]);
  }
  return out;
}

class Stream {
 public:
  Stream() { cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); }
  ~Stream() { cudaStreamDestroy(stream_); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const ::absl::Status ropewire_test_status_ = (expr);              \
    ASSERT_TRUE(ropewire_test_status_.ok()) << ropewire_test_status_; \
  } while (0)

// ---- One attention case: inputs, the CPU reference, the CUDA run, the comparison. ----

struct SeqSpec {
  int cached;  // tokens already in the cache
  int query;   // tokens processed this step
  int offset;  // position of cache index 0
};

struct Case {
  int num_heads = 8;
  int num_kv_heads = 2;
  int head_dim = 64;
  int block_size = 16;
  int sliding_window = 0;
  PositionEncoding position;    // kNone unless set
  bool null_position = false;   // AttentionParams::position = nullptr
  bool one_rope_table = false;  // params.rope_table instead of per-sequence tables
  std::vector<SeqSpec> seqs;
  uint32_t seed = 1;
};

struct Outcome {
  double relative_l2 = 0.0;   // ||gpu - cpu|| / ||cpu||
  double worst_excess = 0.0;  // max |gpu - cpu| - tolerance; <= 0 passes
  int64_t non_finite = 0;     // NaN / Inf outputs
  int64_t unwritten = 0;      // output elements still holding the sentinel
  int64_t guard_damaged = 0;  // sentinels changed outside the output
  int max_partitions = 0;
  std::string worst_at;       // where worst_excess was found
  std::vector<uint16_t> raw;  // the GPU output buffer, for comparing runs
};

PositionEncoding Rope(int rotary_dim, RopeLayout layout) {
  PositionEncoding pe;
  pe.kind = PositionKind::kRope;
  pe.rope.rotary_dim = rotary_dim;
  pe.rope.layout = layout;
  pe.rope.theta = 10000.0;
  pe.rope.inv_freq = DefaultInverseFrequencies(10000.0, rotary_dim);
  return pe;
}

// The inputs of a case in fp32 (already rounded to T) in the layout both backends read.
template <typename T>
class AttentionCase {
 public:
  explicit AttentionCase(const Case& c) : c_(c), rng_(c.seed) {
    geometry_ = {0, c.block_size, c.num_kv_heads, c.head_dim};
    q_width_ = c.num_heads * c.head_dim;
    q_stride_ = q_width_ + 8;     // padding (NaN) that must never be read
    out_stride_ = q_width_ + 16;  // padding (sentinel) that must never be written
    kv_width_ = c.num_kv_heads * c.head_dim;
    BuildBatch();
    BuildValues();
  }

  std::vector<float> RunCpu() const {
    RopeTableSet tables(c_.position.rope);
    RopeTable one_table(c_.position.rope);
    cpu::AttentionParams params = BaseParams<cpu::AttentionParams>();
    params.position = c_.null_position ? nullptr : &c_.position;
    if (c_.position.kind == PositionKind::kRope) {
      if (c_.one_rope_table) {
        one_table.EnsureCapacity(MaxLength(), /*exact=*/true);
        params.rope_table = &one_table;
      } else {
        tables.Prepare(HostView());
        params.seq_rope_tables = tables.per_sequence();
      }
    }
    std::vector<float> out(size_t(rows_) * q_width_, NAN);
    cpu::PagedAttention(q_.data(), q_stride_, {keys_.data(), values_.data()}, geometry_, HostView(),
                        params, out.data(), q_width_);
    return out;
  }

  // Writes the step's K/V with WriteKv over pages that hold the cached tokens, then attends.
  void RunGpu(Outcome* outcome, int runs = 1) const;

  void Compare(const std::vector<float>& reference, Outcome* outcome) const;

  int rows() const { return rows_; }

  // "sequence s (query len q, kv len k), query i, head h, channel c" of an output element.
  std::string WhereIs(int64_t row, int64_t col) const {
    const int s = int(std::upper_bound(query_start_.begin(), query_start_.end(), int(row)) -
                      query_start_.begin()) -
                  1;
    return "sequence " + std::to_string(s) + " (query len " + std::to_string(c_.seqs[s].query) +
           ", kv len " + std::to_string(kv_len_[s]) + "), query " +
           std::to_string(row - query_start_[s]) + ", head " + std::to_string(col / c_.head_dim) +
           ", channel " + std::to_string(col % c_.head_dim);
  }

 private:
  template <typename Params>
  Params BaseParams() const {
    Params params;
    params.num_heads = c_.num_heads;
    params.num_kv_heads = c_.num_kv_heads;
    params.head_dim = c_.head_dim;
    params.softmax_scale = 1.0f / std::sqrt(float(c_.head_dim));
    params.sliding_window = c_.sliding_window;
    return params;
  }

  int64_t MaxLength() const {
    int64_t longest = 1;
    for (size_t s = 0; s < c_.seqs.size(); ++s) {
      longest = std::max<int64_t>(longest, offsets_[s] + kv_len_[s]);
    }
    return longest;
  }

  RaggedBatchView HostView() const {
    RaggedBatchView view;
    view.num_seqs = static_cast<int>(c_.seqs.size());
    view.query_start = query_start_.data();
    view.kv_len = kv_len_.data();
    view.position_offset = offsets_.data();
    view.block_tables = tables_.data();
    view.max_blocks_per_seq = max_blocks_;
    return view;
  }

  // Block tables over shuffled blocks (a few left unused), query rows, slots of the new tokens.
  void BuildBatch() {
    int total_blocks = 0;
    for (const SeqSpec& s : c_.seqs) {
      const int blocks = (s.cached + s.query + c_.block_size - 1) / c_.block_size;
      total_blocks += blocks;
      max_blocks_ = std::max(max_blocks_, blocks);
    }
    max_blocks_ = std::max(max_blocks_, 1);
    geometry_.num_blocks = total_blocks + 3;
    std::vector<int32_t> free(geometry_.num_blocks);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), rng_);
    query_start_ = {0};
    for (const SeqSpec& s : c_.seqs) {
      const int len = s.cached + s.query;
      std::vector<int32_t> table(max_blocks_, -1);  // unused entries are never read
      for (int b = 0; b * c_.block_size < len; ++b) {
        table[b] = free.back();
        free.pop_back();
      }
      for (int i = s.cached; i < len; ++i) {
        new_slots_.push_back(table[i / c_.block_size] * c_.block_size + i % c_.block_size);
      }
      tables_.insert(tables_.end(), table.begin(), table.end());
      query_start_.push_back(query_start_.back() + s.query);
      kv_len_.push_back(len);
      offsets_.push_back(s.offset);
    }
    rows_ = query_start_.back();
  }

  float Random() {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    return Storage<T>::To(Storage<T>::From(normal(rng_)));
  }

  // Keys and values of every token (NaN in unused slots), the new tokens' rows, the queries.
  void BuildValues() {
    keys_.assign(geometry_.LayerElements(), NAN);
    values_.assign(geometry_.LayerElements(), NAN);
    new_k_.assign(size_t(rows_) * kv_width_, 0.0f);
    new_v_.assign(size_t(rows_) * kv_width_, 0.0f);
    int new_row = 0;
    for (size_t s = 0; s < c_.seqs.size(); ++s) {
      for (int i = 0; i < kv_len_[s]; ++i) {
        const int32_t block = tables_[s * max_blocks_ + i / c_.block_size];
        const bool is_new = i >= c_.seqs[s].cached;
        for (int h = 0; h < c_.num_kv_heads; ++h) {
          const int64_t at = block * geometry_.BlockStride() + h * geometry_.HeadStride() +
                             (i % c_.block_size) * c_.head_dim;
          for (int d = 0; d < c_.head_dim; ++d) {
            keys_[at + d] = Random();
            values_[at + d] = Random();
            if (is_new) {
              new_k_[size_t(new_row) * kv_width_ + h * c_.head_dim + d] = keys_[at + d];
              new_v_[size_t(new_row) * kv_width_ + h * c_.head_dim + d] = values_[at + d];
            }
          }
        }
        if (is_new) ++new_row;
      }
    }
    q_.assign(size_t(rows_) * q_stride_, NAN);
    for (int r = 0; r < rows_; ++r) {
      for (int i = 0; i < q_width_; ++i) q_[size_t(r) * q_stride_ + i] = Random();
    }
  }

  // Pages as the device sees them before the step: the new tokens' slots still NaN.
  std::vector<float> PagesBeforeStep(const std::vector<float>& pages) const {
    std::vector<float> before = pages;
    for (int32_t slot : new_slots_) {
      const int64_t block = slot / c_.block_size;
      for (int h = 0; h < c_.num_kv_heads; ++h) {
        const int64_t at = block * geometry_.BlockStride() + h * geometry_.HeadStride() +
                           (slot % c_.block_size) * c_.head_dim;
        std::fill(before.begin() + at, before.begin() + at + c_.head_dim, NAN);
      }
    }
    return before;
  }

  Case c_;
  std::mt19937 rng_;
  KvGeometry geometry_;
  int q_width_ = 0, q_stride_ = 0, out_stride_ = 0, kv_width_ = 0;
  int rows_ = 0, max_blocks_ = 0;
  std::vector<int32_t> query_start_, kv_len_, offsets_, tables_, new_slots_;
  std::vector<float> keys_, values_, new_k_, new_v_, q_;

 public:
  static constexpr int64_t kGuard = 256;  // sentinel elements before and after the output
};

template <typename T>
void AttentionCase<T>::RunGpu(Outcome* outcome, int runs) const {
  Stream stream;
  bool uploaded = true;
  auto upload = [&uploaded](const auto& host) {
    auto buffer = DeviceBuffer::FromHost(host);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    uploaded = uploaded && buffer.ok();
    return buffer.ok() ? std::move(*buffer) : DeviceBuffer();
  };
  DeviceBuffer keys = upload(ToStorage<T>(PagesBeforeStep(keys_)));
  DeviceBuffer values = upload(ToStorage<T>(PagesBeforeStep(values_)));
  DeviceBuffer new_k = upload(ToStorage<T>(new_k_)), new_v = upload(ToStorage<T>(new_v_));
  DeviceBuffer slots = upload(new_slots_), q = upload(ToStorage<T>(q_));
  DeviceBuffer query_start = upload(query_start_), kv_len = upload(kv_len_);
  DeviceBuffer offsets = upload(offsets_), tables = upload(tables_);
  const int64_t out_elements = kGuard + int64_t(rows_) * out_stride_ + kGuard;
  DeviceBuffer out = upload(std::vector<uint16_t>(out_elements, Storage<T>::kSentinelBits));
  ASSERT_TRUE(uploaded);

  ASSERT_OK(WriteKv<T>(new_k.get<T>(), kv_width_, new_v.get<T>(), kv_width_, slots.get<int32_t>(),
                       rows_, geometry_, {keys.get<T>(), values.get<T>()}, stream.get()));
  AttentionParams params = BaseParams<AttentionParams>();
  params.position = c_.null_position ? nullptr : &c_.position;
  DeviceRopeTableSet table_set(c_.position.rope);
  RopeTable host_table(c_.position.rope);
  DeviceRopeTable one_table;
  if (c_.position.kind == PositionKind::kRope && c_.one_rope_table) {
    host_table.EnsureCapacity(MaxLength(), /*exact=*/true);
    auto uploaded = DeviceRopeTable::Upload(host_table, stream.get());
    ASSERT_OK(uploaded.status());
    one_table = std::move(*uploaded);
    params.rope_table = one_table.view();
  } else if (c_.position.kind == PositionKind::kRope) {
    ASSERT_OK(table_set.Prepare(HostView(), stream.get()));
    params.seq_rope_tables = table_set.per_sequence();
  }
  auto bias = DeviceScoreBias::Upload(c_.position, c_.num_heads);
  ASSERT_OK(bias.status());
  params.alibi_slopes = bias->alibi_slopes();
  params.relative_bias = bias->relative_bias();
  params.relative_bias_rows = bias->relative_bias_rows();

  RaggedBatchView device_view = HostView();
  device_view.query_start = query_start.get<const int32_t>();
  device_view.kv_len = kv_len.get<const int32_t>();
  device_view.position_offset = offsets.get<const int32_t>();
  device_view.block_tables = tables.get<const int32_t>();
  PagedAttentionPlan plan;
  ASSERT_OK(plan.Prepare(HostView(), params, stream.get()));
  outcome->max_partitions = plan.max_partitions();
  for (int run = 0; run < runs; ++run) {
    ASSERT_OK(PagedAttention<T>(
        q.get<const T>(), q_stride_, {keys.get<const T>(), values.get<const T>()}, geometry_,
        device_view, params, plan, out.get<T>() + kGuard, out_stride_, stream.get()));
  }
  ASSERT_OK(CudaStatus(cudaStreamSynchronize(stream.get()), "cudaStreamSynchronize"));
  auto host_out = out.ToHost<uint16_t>();
  ASSERT_OK(host_out.status());
  outcome->raw = std::move(*host_out);
}

template <typename T>
void AttentionCase<T>::Compare(const std::vector<float>& reference, Outcome* outcome) const {
  double sum_sq_ref = 0.0;
  for (float x : reference) sum_sq_ref += double(x) * x;
  const double rms = std::sqrt(sum_sq_ref / std::max<size_t>(reference.size(), 1));
  const double rtol = Storage<T>::kRelativeTolerance;
  double sum_sq_diff = 0.0;
  for (int64_t i = 0; i < int64_t(outcome->raw.size()); ++i) {
    const int64_t at = i - kGuard;
    const int64_t row = at >= 0 ? at / out_stride_ : -1;
    const int64_t col = at >= 0 ? at % out_stride_ : -1;
    const bool is_output = at >= 0 && row < rows_ && col < q_width_;
    const uint16_t bits = outcome->raw[i];
    if (!is_output) {
      outcome->guard_damaged += bits != Storage<T>::kSentinelBits;
      continue;
    }
    if (bits == Storage<T>::kSentinelBits) {
      ++outcome->unwritten;
      continue;
    }
    const float actual = Storage<T>::To(FromBits<T>(bits));
    if (!std::isfinite(actual)) {
      ++outcome->non_finite;
      continue;
    }
    const double expected = reference[size_t(row) * q_width_ + col];
    const double diff = std::abs(actual - expected);
    sum_sq_diff += diff * diff;
    // Rounding to T relative to the value, plus a floor for values near zero.
    const double tolerance = rtol * std::abs(expected) + 0.25 * rtol * rms;
    if (diff - tolerance > outcome->worst_excess) {
      outcome->worst_excess = diff - tolerance;
      outcome->worst_at = WhereIs(row, col) + ": " + std::to_string(actual) + " instead of " +
                          std::to_string(expected);
    }
  }
  outcome->relative_l2 = std::sqrt(sum_sq_diff / std::max(sum_sq_ref, 1e-30));
}

template <typename T>
Outcome RunAndCompare(const Case& c, int runs = 1) {
  AttentionCase<T> attention(c);
  Outcome outcome;
  attention.RunGpu(&outcome, runs);
  if (!outcome.raw.empty()) attention.Compare(attention.RunCpu(), &outcome);
  return outcome;
}

std::string Describe(const Case& c, const char* type) {
  std::string text = std::string(type) + " heads " + std::to_string(c.num_heads) + "/" +
                     std::to_string(c.num_kv_heads) + " dim " + std::to_string(c.head_dim) +
                     " block " + std::to_string(c.block_size) + " window " +
                     std::to_string(c.sliding_window);
  if (c.position.kind == PositionKind::kRope) {
    text += " rope R " + std::to_string(c.position.rope.rotary_dim) +
            (c.position.rope.layout == RopeLayout::kNeox ? " neox" : " interleaved");
  }
  return text;
}

template <typename T>
Outcome ExpectMatchesCpu(const Case& c) {
  SCOPED_TRACE(Describe(c, Storage<T>::kName));
  Outcome o = RunAndCompare<T>(c);
  EXPECT_FALSE(o.raw.empty()) << "the CUDA run failed";
  if (o.raw.empty()) return o;
  EXPECT_EQ(o.unwritten, 0) << "output elements never written";
  EXPECT_EQ(o.guard_damaged, 0) << "elements outside the output overwritten";
  EXPECT_EQ(o.non_finite, 0) << "NaN or Inf in the output";
  EXPECT_LE(o.relative_l2, Storage<T>::kNormTolerance);
  EXPECT_LE(o.worst_excess, 0.0) << "an element differs beyond rounding (relative l2 "
                                 << o.relative_l2 << "), worst at " << o.worst_at;
  return o;
}

// Returns the most partitions a decode of the case was split into.
int ExpectMatchesCpuBothTypes(const Case& c) {
  const int partitions = ExpectMatchesCpu<__nv_bfloat16>(c).max_partitions;
  ExpectMatchesCpu<__half>(c);
  return partitions;
}

// Decodes and prefill chunks together: whole prompts, chunks after cached blocks, offsets, a
// one-token prompt, a decode long enough to be split into partitions, a chunk of many row tiles.
const std::vector<SeqSpec> kMixedBatch = {
    {0, 37, 0}, {40, 1, 0}, {16, 9, 5}, {63, 1, 300}, {0, 1, 0}, {700, 1, 11}, {100, 70, 3},
};

// ---- Tests. ----

struct ShapeParam {
  int head_dim;
  int group;
};
void PrintTo(const ShapeParam& p, std::ostream* os) {
  *os << "head_dim " << p.head_dim << ", group " << p.group;
}

class CudaAttentionShapes : public ::testing::TestWithParam<ShapeParam> {};

TEST_P(CudaAttentionShapes, MixedBatchMatchesCpu) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  const ShapeParam shape = GetParam();
  for (RopeLayout layout : {RopeLayout::kNeox, RopeLayout::kInterleaved}) {
    for (int block_size : {16, 32}) {
      Case c;
      c.num_kv_heads = 2;
      c.num_heads = 2 * shape.group;
      c.head_dim = shape.head_dim;
      c.block_size = block_size;
      c.position = Rope(shape.head_dim, layout);
      c.seqs = kMixedBatch;
      c.seed = 100 + block_size + shape.head_dim + shape.group;
      ExpectMatchesCpuBothTypes(c);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryHeadDimAndGroup, CudaAttentionShapes,
                         ::testing::Values(ShapeParam{64, 1}, ShapeParam{64, 4}, ShapeParam{64, 8},
                                           ShapeParam{80, 1}, ShapeParam{80, 4}, ShapeParam{80, 8},
                                           ShapeParam{96, 1}, ShapeParam{96, 4}, ShapeParam{96, 8},
                                           ShapeParam{128, 1}, ShapeParam{128, 4},
                                           ShapeParam{128, 8}, ShapeParam{256, 1},
                                           ShapeParam{256, 4}, ShapeParam{256, 8}),
                         [](const ::testing::TestParamInfo<ShapeParam>& info) {
                           return "dim" + std::to_string(info.param.head_dim) + "_group" +
                                  std::to_string(info.param.group);
                         });

// Partial rotary in both layouts, including R/2 not a multiple of 8 (NeoX's pair-at-a-time path)
// and an interleaved R that ends inside a 16-byte chunk.
TEST(CudaAttentionRope, PartialRotaryBothLayouts) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  struct Partial {
    int head_dim, rotary_dim;
    RopeLayout layout;
  };
  for (const Partial& p :
       {Partial{80, 32, RopeLayout::kNeox},  // phi-2
        Partial{96, 24, RopeLayout::kNeox},  // GPT-NeoX-20B
        Partial{64, 40, RopeLayout::kNeox}, Partial{64, 16, RopeLayout::kNeox},
        Partial{128, 32, RopeLayout::kNeox},         // Pythia
        Partial{256, 64, RopeLayout::kInterleaved},  // GPT-J
        Partial{64, 20, RopeLayout::kInterleaved}, Partial{96, 2, RopeLayout::kInterleaved}}) {
    Case c;
    c.num_heads = 8;
    c.num_kv_heads = 2;
    c.head_dim = p.head_dim;
    c.position = Rope(p.rotary_dim, p.layout);
    c.seqs = kMixedBatch;
    c.seed = 7 + p.rotary_dim;
    ExpectMatchesCpuBothTypes(c);
  }
}

// Sequences of one step with different lengths rotate with different tables (DESIGN.md
// decision 1): dynamic NTK beyond its base length, LongRoPE's long factors and attention factor.
TEST(CudaAttentionRope, PerSequenceTables) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  PositionEncoding dynamic = Rope(64, RopeLayout::kNeox);
  dynamic.rope.length_rule = RopeLengthRule::kDynamicNtk;
  dynamic.rope.dynamic_factor = 2.0;
  dynamic.rope.dynamic_base_length = 45;  // kMixedBatch has sequences on both sides
  PositionEncoding longrope = dynamic;
  longrope.rope.length_rule = RopeLengthRule::kLongRope;
  longrope.rope.long_threshold = 45;
  longrope.rope.attention_scaling = 1.19f;
  for (float inv : dynamic.rope.inv_freq) longrope.rope.long_inv_freq.push_back(inv / 3.0f);
  for (const PositionEncoding& pe : {dynamic, longrope}) {
    Case c;
    c.num_heads = 8;
    c.num_kv_heads = 2;
    c.head_dim = 64;
    c.position = pe;
    c.seqs = kMixedBatch;
    ExpectMatchesCpuBothTypes(c);
  }
}

TEST(CudaAttentionRope, OneTableServesTheBatch) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  Case c;
  c.num_heads = 16;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.position = Rope(128, RopeLayout::kNeox);
  c.position.rope.attention_scaling = 1.1f;
  c.one_rope_table = true;
  c.seqs = kMixedBatch;
  ExpectMatchesCpuBothTypes(c);
}

TEST(CudaAttentionScoreBias, AlibiBothForms) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  for (bool falcon_form : {false, true}) {
    Case c;
    c.num_heads = 12;
    c.num_kv_heads = 3;
    c.head_dim = 64;
    c.position.kind = PositionKind::kAlibi;
    c.position.alibi.slopes = AlibiSlopes(12);
    if (falcon_form) {
      for (float& s : c.position.alibi.slopes) s = RoundToBfloat16(s);
      c.position.alibi.bf16_key_position_form = true;
      c.position.alibi.bias_scale = 1.0f / 8.0f;
    }
    c.seqs = kMixedBatch;
    ExpectMatchesCpuBothTypes(c);
  }
}

TEST(CudaAttentionScoreBias, T5RelativeBias) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  for (bool bidirectional : {false, true}) {
    Case c;
    c.num_heads = 8;
    c.num_kv_heads = 8;
    c.head_dim = 64;
    c.position.kind = PositionKind::kRelativeBias;
    RelativeBiasSpec& rb = c.position.relative_bias;
    rb.num_heads = 8;
    rb.bidirectional = bidirectional;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int i = 0; i < rb.num_buckets * rb.num_heads; ++i) rb.table.push_back(normal(rng));
    c.seqs = kMixedBatch;  // distances up to 700: well past max_distance 128
    ExpectMatchesCpuBothTypes(c);
  }
}

// No position term: NoPE, learned and sinusoidal (added to the embeddings elsewhere), and none.
TEST(CudaAttentionScoreBias, NoPositionTerm) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  for (PositionKind kind : {PositionKind::kNone, PositionKind::kLearned}) {
    for (bool null_position : {false, true}) {
      Case c;
      c.num_heads = 8;
      c.num_kv_heads = 2;
      c.head_dim = 96;
      c.position.kind = kind;
      c.null_position = null_position;
      c.seqs = kMixedBatch;
      ExpectMatchesCpuBothTypes(c);
    }
  }
}

TEST(CudaAttention, SlidingWindow) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  const std::vector<SeqSpec> batch = {{0, 150, 0}, {200, 1, 3}, {70, 33, 11}, {1500, 1, 0}};
  for (int window : {1, 7, 50, 700}) {
    Case c;
    c.num_heads = 16;
    c.num_kv_heads = 4;
    c.head_dim = 128;
    c.sliding_window = window;
    c.position = Rope(128, RopeLayout::kNeox);
    c.seqs = batch;
    c.seed = window;
    ExpectMatchesCpuBothTypes(c);
  }
}

// Block sizes from one token per block to 64; tiles of 16 (decode) and 32 (prefill) keys span
// several blocks or part of one.
TEST(CudaAttention, BlockSizes) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  for (int block_size : {1, 8, 16, 32, 64}) {
    Case c;
    c.num_heads = 8;
    c.num_kv_heads = 2;
    c.head_dim = 128;
    c.block_size = block_size;
    c.position = Rope(128, RopeLayout::kNeox);
    c.seqs = kMixedBatch;
    c.seed = 40 + block_size;
    ExpectMatchesCpuBothTypes(c);
  }
}

// KV head counts that leave warps idle in the last block, groups split across warps (12), and a
// 71-head multi-query layer (Falcon-7B).
TEST(CudaAttention, HeadLayouts) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  struct Heads {
    int num_heads, num_kv_heads, head_dim;
  };
  for (const Heads& h : {Heads{12, 12, 64}, Heads{10, 10, 256}, Heads{24, 2, 64}, Heads{71, 1, 64},
                         Heads{32, 8, 128}, Heads{7, 7, 80}}) {
    Case c;
    c.num_heads = h.num_heads;
    c.num_kv_heads = h.num_kv_heads;
    c.head_dim = h.head_dim;
    c.position = Rope(h.head_dim, RopeLayout::kNeox);
    c.seqs = {{0, 21, 0}, {300, 1, 2}, {50, 5, 0}, {1200, 1, 0}};
    ExpectMatchesCpuBothTypes(c);
  }
}

// A 32k-token decode (the plan splits it into partitions combined by a second kernel) beside
// shorter ones; Llama-3-8B's GQA group of 4.
TEST(CudaAttention, LongContextDecodeIsSplit) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  Case c;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 128;
  c.position = Rope(128, RopeLayout::kNeox);
  c.position.rope.inv_freq = DefaultInverseFrequencies(500000.0, 128);
  c.seqs = {{32767, 1, 0}, {4095, 1, 17}, {5, 1, 0}};
  for (int block_size : {16, 32}) {
    c.block_size = block_size;
    SCOPED_TRACE("block size " + std::to_string(block_size));
    EXPECT_GT(ExpectMatchesCpuBothTypes(c), 8) << "the long decode was not split";
  }
}

// A plan serves every layer of a step: running twice gives the same bits.
TEST(CudaAttention, RepeatedRunsWithOnePlanAgree) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  Case c;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 128;
  c.position = Rope(128, RopeLayout::kNeox);
  c.seqs = kMixedBatch;
  const Outcome once = RunAndCompare<__nv_bfloat16>(c, 1);
  const Outcome twice = RunAndCompare<__nv_bfloat16>(c, 2);
  ASSERT_FALSE(once.raw.empty());
  EXPECT_EQ(once.raw, twice.raw);
}

TEST(CudaAttention, RejectsWhatItCannotRun) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  const std::vector<int32_t> query_start = {0, 1}, kv_len = {5}, offsets = {0}, tables = {0};
  RaggedBatchView batch{1, query_start.data(), kv_len.data(), offsets.data(), tables.data(), 1};
  AttentionParams params;
  params.num_heads = 4;
  params.num_kv_heads = 2;
  params.head_dim = 72;
  PagedAttentionPlan plan;
  const absl::Status status = plan.Prepare(batch, params, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("head_dim 72"), std::string::npos) << status;

  params.head_dim = 64;
  params.num_heads = 5;  // not a multiple of the KV heads
  EXPECT_EQ(plan.Prepare(batch, params, nullptr).code(), absl::StatusCode::kInvalidArgument);

  params.num_heads = 4;
  const std::vector<int32_t> too_long_query = {0, 6};  // query_len 6 > kv_len 5
  batch.query_start = too_long_query.data();
  EXPECT_EQ(plan.Prepare(batch, params, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

// ---- WriteKv. ----

template <typename T>
void ExpectWriteKvPlacesRows(int64_t stride) {
  SCOPED_TRACE(std::string(Storage<T>::kName) + " stride " + std::to_string(stride));
  const KvGeometry geometry{6, 4, 2, 64};                 // rows of 2 * 64 = 128 values
  const std::vector<int32_t> slots = {23, 0, 7, -1, 12};  // -1: a padding row, not written
  const int rows = int(slots.size());
  std::vector<uint16_t> k(rows * stride), v(rows * stride);
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = Bits(Storage<T>::From(float(i % 997) * 0.25f));
    v[i] = Bits(Storage<T>::From(-float(i % 991) * 0.5f));
  }
  const std::vector<uint16_t> sentinel(geometry.LayerElements(), Storage<T>::kSentinelBits);
  auto keys = DeviceBuffer::FromHost(sentinel), values = DeviceBuffer::FromHost(sentinel);
  auto k_dev = DeviceBuffer::FromHost(k), v_dev = DeviceBuffer::FromHost(v);
  auto slots_dev = DeviceBuffer::FromHost(slots);
  ASSERT_TRUE(keys.ok() && values.ok() && k_dev.ok() && v_dev.ok() && slots_dev.ok());
  ASSERT_OK(WriteKv<T>(k_dev->get<T>(), stride, v_dev->get<T>(), stride, slots_dev->get<int32_t>(),
                       rows, geometry, {keys->get<T>(), values->get<T>()}, nullptr));
  ASSERT_OK(CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize"));
  auto keys_host = keys->ToHost<uint16_t>(), values_host = values->ToHost<uint16_t>();
  ASSERT_TRUE(keys_host.ok() && values_host.ok());
  std::vector<uint16_t> want_k = sentinel, want_v = sentinel;
  for (int r = 0; r < rows; ++r) {
    if (slots[r] < 0) continue;
    const int block = slots[r] / geometry.block_size, offset = slots[r] % geometry.block_size;
    for (int h = 0; h < geometry.num_kv_heads; ++h) {
      for (int d = 0; d < geometry.head_dim; ++d) {
        const int64_t at = block * geometry.BlockStride() + h * geometry.HeadStride() +
                           offset * geometry.head_dim + d;
        want_k[at] = k[r * stride + h * geometry.head_dim + d];
        want_v[at] = v[r * stride + h * geometry.head_dim + d];
      }
    }
  }
  EXPECT_EQ(*keys_host, want_k);
  EXPECT_EQ(*values_host, want_v);
}

TEST(CudaWriteKv, PlacesRowsInTheirSlots) {
  ROPEWIRE_SKIP_WITHOUT_GPU();
  for (int64_t stride : {128, 136, 131}) {  // 16-byte copies for the first two, elements for 131
    ExpectWriteKvPlacesRows<__nv_bfloat16>(stride);
    ExpectWriteKvPlacesRows<__half>(stride);
  }
}

}  // namespace
}  // namespace ropewire::kernels::cuda
