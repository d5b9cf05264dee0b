// Host side of the CUDA paged attention: validation, the plan that splits a step among thread
// blocks, and the launches (kernels in attention_decode.cuh / attention_prefill.cuh).
#include "kernels/cuda/paged_attention.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/attention_launch.cuh"
#include "kernels/cuda/cuda_status.h"

namespace ropewire::kernels::cuda {

using attention::CombineItem;
using attention::DecodeItem;
using attention::PositionVariant;
using attention::PrefillItem;
using attention::SeqInfo;

namespace attention {

struct PlanState {
  // The device the plan was made for and what bounds the launches there.
  int device = -1;
  int num_sms = 0;
  int shared_per_block = 0;  // opt-in maximum of dynamic shared memory per block
  // The shape the plan was prepared for; runs must match it.
  int num_seqs = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int sliding_window = 0;
  PositionVariant variant = PositionVariant::kNone;
  int rotary_dim = 0;
  // Decode blocks: `decode_warps` KV heads per block (kv_chunks blocks cover them), query heads
  // split into sub-groups of heads_per_warp.
  int decode_warps = 0;
  int kv_chunks = 0;
  int heads_per_warp = 0;
  int query_sub_groups = 0;
  int table_stride = 0;
  size_t decode_shared = 0;
  int decode_blocks_per_sm = 0;
  int partition_keys = 0;
  int max_partitions = 0;
  int num_partials = 0;
  size_t prefill_shared = 0;
  // Work lists, in this order in `host` and at the start of `buffer`, then the partial results.
  std::vector<SeqInfo> seqs;
  std::vector<DecodeItem> decode_items;
  std::vector<CombineItem> combine_items;
  std::vector<PrefillItem> prefill_items;
  size_t decode_at = 0, combine_at = 0, prefill_at = 0, partial_ml_at = 0, partial_acc_at = 0;
  std::vector<unsigned char> host;
  DeviceBuffer buffer;

  template <typename U>
  U* At(size_t offset) const {
    return reinterpret_cast<U*>(buffer.get<unsigned char>() + offset);
  }
};

struct PlanAccess {
  static const PlanState* Get(const PagedAttentionPlan& plan) { return plan.state_.get(); }
};

}  // namespace attention

using attention::PlanState;

namespace {

constexpr int kPartitionChoices[] = {512, 256, 128, 64};
// A block's fixed cost (query load, pipeline fill) in keys' worth of time, for choosing the
// partition size.
constexpr int kBlockOverheadKeys = 32;

size_t AlignUp(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

int CeilDiv(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

absl::StatusOr<PositionVariant> VariantOf(const AttentionParams& params) {
  if (params.position == nullptr) return PositionVariant::kNone;
  const PositionEncoding& pe = *params.position;
  switch (pe.kind) {
    case PositionKind::kNone:
    case PositionKind::kLearned:
    case PositionKind::kSinusoidal: return PositionVariant::kNone;
    case PositionKind::kAlibi: return PositionVariant::kAlibi;
    case PositionKind::kRelativeBias: return PositionVariant::kRelativeBias;
    case PositionKind::kRope: {
      const int r = pe.rope.rotary_dim;
      if (r < 2 || r > params.head_dim || r % 2 != 0) {
        return absl::InvalidArgumentError(absl::StrCat("attention: rope.rotary_dim ", r,
                                                       " must be even and in [2, head_dim ",
                                                       params.head_dim, "]"));
      }
      return pe.rope.layout == RopeLayout::kNeox ? PositionVariant::kRopeNeox
                                                 : PositionVariant::kRopeInterleaved;
    }
  }
  return absl::InvalidArgumentError("attention: unknown position kind");
}

absl::Status ValidateHeads(const AttentionParams& params) {
  if (!AttentionHeadDimSupported(params.head_dim)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention: head_dim ", params.head_dim,
                     " has no CUDA kernel (compiled for 64, 80, 96, 128 and 256)"));
  }
  if (params.num_heads <= 0 || params.num_kv_heads <= 0 ||
      params.num_heads % params.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("attention: num_heads ", params.num_heads,
                                                   " must be a positive multiple of num_kv_heads ",
                                                   params.num_kv_heads));
  }
  if (params.sliding_window < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention: sliding_window ", params.sliding_window, " is negative"));
  }
  return absl::OkStatus();
}

absl::Status QueryDevice(PlanState& state) {
  int device = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  if (device == state.device) return absl::OkStatus();
  CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&state.num_sms, cudaDevAttrMultiProcessorCount, device));
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&state.shared_per_block,
                                              cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  state.device = device;
  return absl::OkStatus();
}

// The host copy of the batch as the kernels will see it.
absl::Status ReadSequences(const RaggedBatchView& batch, std::vector<SeqInfo>& seqs) {
  seqs.clear();
  if (batch.num_seqs < 0) return absl::InvalidArgumentError("attention: negative num_seqs");
  if (batch.num_seqs == 0) return absl::OkStatus();
  if (batch.query_start == nullptr || batch.kv_len == nullptr || batch.position_offset == nullptr) {
    return absl::InvalidArgumentError(
        "attention: the plan needs query_start, kv_len and position_offset on the host");
  }
  for (int s = 0; s < batch.num_seqs; ++s) {
    const int query_len = batch.QueryLen(s);
    const int kv_len = batch.kv_len[s];
    if (query_len < 0 || kv_len < query_len || batch.position_offset[s] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("attention: sequence ", s, " has query_len ", query_len, ", kv_len ", kv_len,
                       " and position_offset ", batch.position_offset[s],
                       " (need 0 <= query_len <= kv_len, offset >= 0)"));
    }
    seqs.push_back({batch.query_start[s], query_len, kv_len, batch.position_offset[s]});
  }
  return absl::OkStatus();
}

// KV heads per decode block (one warp each) and the split of each KV head's query heads.
absl::Status ChooseDecodeShape(PlanState& state) {
  const int group = state.num_heads / state.num_kv_heads;
  state.query_sub_groups = CeilDiv(group, attention::kMaxQueryHeadsPerWarp);
  state.heads_per_warp = CeilDiv(group, state.query_sub_groups);
  state.table_stride = attention::IsRope(state.variant)
                           ? attention::DecodeTableStride(RopeRowFloats(state.rotary_dim))
                           : 0;
  int warps = std::min(state.num_kv_heads, attention::DecodeMaxWarps(state.head_dim));
  // Prefer a divisor of the KV heads so that no warp idles, unless that halves the sharing.
  for (int w = warps; w * 2 > warps; --w) {
    if (state.num_kv_heads % w == 0) {
      warps = w;
      break;
    }
  }
  auto shared = [&](int w) {
    return attention::DecodeSharedBytes(state.head_dim, w, state.heads_per_warp, state.table_stride,
                                        sizeof(__nv_bfloat16));  // both storage types: 2 bytes
  };
  while (warps > 1 && shared(warps) > size_t(state.shared_per_block)) --warps;
  if (shared(warps) > size_t(state.shared_per_block)) {
    return absl::ResourceExhaustedError(absl::StrCat("attention: a decode block needs ",
                                                     shared(warps),
                                                     " bytes of shared memory; the device "
                                                     "allows ",
                                                     state.shared_per_block));
  }
  state.decode_warps = warps;
  state.decode_shared = shared(warps);
  state.kv_chunks = CeilDiv(state.num_kv_heads, warps);
  state.prefill_shared = attention::PrefillSharedBytes(state.head_dim, sizeof(__nv_bfloat16));
  if (state.prefill_shared > size_t(state.shared_per_block)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("attention: a prefill block needs ", state.prefill_shared,
                     " bytes of shared memory; the device allows ", state.shared_per_block));
  }
  return absl::OkStatus();
}

// Decode blocks resident per SM (a host-side computation from the kernel's resources).
absl::Status ComputeDecodeOccupancy(PlanState& state) {
  attention::LaunchShape shape;
  shape.block = dim3(state.decode_warps * 32);
  shape.shared_bytes = state.decode_shared;
  int blocks = 0;
  // Both storage types compile to the same resources up to a few registers; bf16 stands for both.
  RETURN_IF_ERROR(
      attention::DecodeBlocksPerSm<__nv_bfloat16>(state.variant, state.head_dim, shape, &blocks));
  state.decode_blocks_per_sm = std::max(1, blocks);
  return absl::OkStatus();
}

// First key a decode sequence sees (sliding window).
int DecodeKeyBegin(const SeqInfo& seq, int sliding_window) {
  return sliding_window > 0 ? std::max(0, seq.kv_len - sliding_window) : 0;
}

// Keys per partition: the choice that finishes soonest when blocks run in waves of
// num_sms * blocks_per_sm, each wave as long as its longest block; ties keep the larger size
// (fewer partial results to write and combine).
int ChoosePartitionKeys(const PlanState& state) {
  const int64_t wave = int64_t(state.num_sms) * state.decode_blocks_per_sm;
  const int64_t head_blocks = int64_t(state.kv_chunks) * state.query_sub_groups;
  int best = kPartitionChoices[0];
  int64_t best_cost = std::numeric_limits<int64_t>::max();
  for (int keys : kPartitionChoices) {
    int64_t blocks = 0;
    int longest = 0;
    for (const SeqInfo& seq : state.seqs) {
      if (seq.query_len != 1) continue;
      const int visible = seq.kv_len - DecodeKeyBegin(seq, state.sliding_window);
      blocks += CeilDiv(visible, keys) * head_blocks;
      longest = std::max(longest, std::min(visible, keys));
    }
    const int64_t waves = (blocks + wave - 1) / std::max<int64_t>(wave, 1);
    const int64_t cost = waves * (longest + kBlockOverheadKeys);
    if (cost < best_cost) {
      best = keys;
      best_cost = cost;
    }
  }
  return best;
}

void BuildDecodeItems(PlanState& state) {
  state.decode_items.clear();
  state.combine_items.clear();
  state.num_partials = 0;
  state.max_partitions = 0;
  const int keys = state.partition_keys;
  for (int s = 0; s < state.num_seqs; ++s) {
    const SeqInfo& seq = state.seqs[s];
    if (seq.query_len != 1) continue;
    const int begin = DecodeKeyBegin(seq, state.sliding_window);
    const int partitions = CeilDiv(seq.kv_len - begin, keys);
    state.max_partitions = std::max(state.max_partitions, partitions);
    if (partitions == 1) {
      state.decode_items.push_back({s, begin, seq.kv_len, -1});
      continue;
    }
    state.combine_items.push_back({s, state.num_partials, partitions, 0});
    for (int p = 0; p < partitions; ++p) {
      state.decode_items.push_back({s, begin + p * keys,
                                    std::min(begin + (p + 1) * keys, seq.kv_len),
                                    state.num_partials + p});
    }
    state.num_partials += partitions;
  }
  // Longest blocks first, so that the short ones fill the last wave.
  std::stable_sort(state.decode_items.begin(), state.decode_items.end(),
                   [](const DecodeItem& a, const DecodeItem& b) {
                     return a.key_end - a.key_begin > b.key_end - b.key_begin;
                   });
}

void BuildPrefillItems(PlanState& state) {
  state.prefill_items.clear();
  const int group = state.num_heads / state.num_kv_heads;
  const int rows_per_block = attention::PrefillRows(state.head_dim);
  std::vector<std::pair<int, PrefillItem>> by_work;  // keys the block attends, item
  for (int s = 0; s < state.num_seqs; ++s) {
    const SeqInfo& seq = state.seqs[s];
    if (seq.query_len <= 1) continue;
    const int rows = seq.query_len * group;
    const int first_cache_index = seq.kv_len - seq.query_len;
    for (int row = 0; row < rows; row += rows_per_block) {
      const int last_query = first_cache_index + (std::min(row + rows_per_block, rows) - 1) / group;
      int first_key = 0;
      if (state.sliding_window > 0) {
        first_key = std::max(0, first_cache_index + row / group - state.sliding_window + 1);
      }
      by_work.push_back({last_query + 1 - first_key, PrefillItem{s, row, 0, 0}});
    }
  }
  std::stable_sort(by_work.begin(), by_work.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [work, item] : by_work) state.prefill_items.push_back(item);
}

// Lays the work lists and partial results out in one device buffer and uploads the lists.
absl::Status Upload(PlanState& state, cudaStream_t stream) {
  auto bytes_of = [](const auto& items) { return items.size() * sizeof(items[0]); };
  state.decode_at = AlignUp(bytes_of(state.seqs), 16);
  state.combine_at = AlignUp(state.decode_at + bytes_of(state.decode_items), 16);
  state.prefill_at = AlignUp(state.combine_at + bytes_of(state.combine_items), 16);
  const size_t lists_end = state.prefill_at + bytes_of(state.prefill_items);
  const size_t slots = size_t(state.num_partials) * state.num_heads;
  state.partial_ml_at = AlignUp(lists_end, 256);
  state.partial_acc_at = AlignUp(state.partial_ml_at + slots * 2 * sizeof(float), 256);
  const size_t total = state.partial_acc_at + slots * state.head_dim * sizeof(float);
  if (total > state.buffer.bytes()) {
    // Grow geometrically. The old buffer may still be read by kernels of the previous step.
    const size_t grown = std::max(total, 2 * state.buffer.bytes());
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    state.buffer = DeviceBuffer();
    ASSIGN_OR_RETURN(state.buffer, DeviceBuffer::Allocate(grown));
  }
  state.host.assign(lists_end, 0);
  auto put = [&](size_t at, const auto& items) {
    if (!items.empty()) std::memcpy(state.host.data() + at, items.data(), bytes_of(items));
  };
  put(0, state.seqs);
  put(state.decode_at, state.decode_items);
  put(state.combine_at, state.combine_items);
  put(state.prefill_at, state.prefill_items);
  if (lists_end == 0) return absl::OkStatus();
  // Pageable source: the copy is staged before this returns, so `host` may change afterwards;
  // on `stream` it lands after the kernels of the previous step that read the old lists.
  return CudaStatus(cudaMemcpyAsync(state.buffer.get(), state.host.data(), lists_end,
                                    cudaMemcpyHostToDevice, stream),
                    "cudaMemcpyAsync(attention plan)");
}

}  // namespace

bool AttentionHeadDimSupported(int head_dim) {
  for (int d : kAttentionHeadDims) {
    if (d == head_dim) return true;
  }
  return false;
}

int RopeSinOffset(int rotary_dim) { return (rotary_dim / 2 + 3) / 4 * 4; }
int RopeRowFloats(int rotary_dim) { return 2 * RopeSinOffset(rotary_dim); }

PagedAttentionPlan::PagedAttentionPlan() : state_(std::make_unique<PlanState>()) {}
PagedAttentionPlan::PagedAttentionPlan(PagedAttentionPlan&&) noexcept = default;
PagedAttentionPlan& PagedAttentionPlan::operator=(PagedAttentionPlan&&) noexcept = default;
PagedAttentionPlan::~PagedAttentionPlan() = default;

int PagedAttentionPlan::partition_keys() const { return state_->partition_keys; }
int PagedAttentionPlan::max_partitions() const { return state_->max_partitions; }
int PagedAttentionPlan::decode_blocks() const {
  return int(state_->decode_items.size()) * state_->kv_chunks * state_->query_sub_groups;
}
int PagedAttentionPlan::prefill_blocks() const {
  return int(state_->prefill_items.size()) * state_->num_kv_heads;
}
size_t PagedAttentionPlan::device_bytes() const { return state_->buffer.bytes(); }

absl::Status PagedAttentionPlan::Prepare(const RaggedBatchView& host_batch,
                                         const AttentionParams& params, cudaStream_t stream) {
  PlanState& state = *state_;
  RETURN_IF_ERROR(ValidateHeads(params));
  ASSIGN_OR_RETURN(state.variant, VariantOf(params));
  state.rotary_dim = attention::IsRope(state.variant) ? params.position->rope.rotary_dim : 0;
  state.num_heads = params.num_heads;
  state.num_kv_heads = params.num_kv_heads;
  state.head_dim = params.head_dim;
  state.sliding_window = params.sliding_window;
  RETURN_IF_ERROR(ReadSequences(host_batch, state.seqs));
  state.num_seqs = host_batch.num_seqs;
  RETURN_IF_ERROR(QueryDevice(state));
  RETURN_IF_ERROR(ChooseDecodeShape(state));
  const bool any_decode = std::any_of(state.seqs.begin(), state.seqs.end(),
                                      [](const SeqInfo& s) { return s.query_len == 1; });
  if (any_decode) {
    RETURN_IF_ERROR(ComputeDecodeOccupancy(state));
    state.partition_keys = ChoosePartitionKeys(state);
  }
  BuildDecodeItems(state);
  BuildPrefillItems(state);
  return Upload(state, stream);
}

namespace {

absl::Status ValidateRun(const PlanState& plan, const AttentionParams& params,
                         const KvGeometry& geometry, const RaggedBatchView& batch,
                         PositionVariant variant) {
  if (plan.head_dim == 0) {
    return absl::FailedPreconditionError("PagedAttention: the plan was never prepared");
  }
  const int rotary_dim = attention::IsRope(variant) ? params.position->rope.rotary_dim : 0;
  if (params.num_heads != plan.num_heads || params.num_kv_heads != plan.num_kv_heads ||
      params.head_dim != plan.head_dim || params.sliding_window != plan.sliding_window ||
      variant != plan.variant || rotary_dim != plan.rotary_dim || batch.num_seqs != plan.num_seqs) {
    return absl::InvalidArgumentError(
        "PagedAttention: params or batch differ from those the plan was prepared for");
  }
  if (geometry.head_dim != params.head_dim || geometry.num_kv_heads != params.num_kv_heads ||
      geometry.block_size <= 0 || geometry.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PagedAttention: KV geometry (", geometry.num_blocks, " blocks of ",
                     geometry.block_size, ", ", geometry.num_kv_heads, " heads of ",
                     geometry.head_dim, ") does not match the attention params"));
  }
  if (plan.num_seqs > 0 && batch.block_tables == nullptr) {
    return absl::InvalidArgumentError("PagedAttention: block_tables is null");
  }
  switch (variant) {
    case PositionVariant::kRopeNeox:
    case PositionVariant::kRopeInterleaved:
      if (params.seq_rope_tables == nullptr &&
          (params.rope_table.rows == nullptr || params.rope_table.capacity <= 0 ||
           params.rope_table.rotary_dim != rotary_dim ||
           reinterpret_cast<uintptr_t>(params.rope_table.rows) % 16 != 0)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PagedAttention: RoPE needs seq_rope_tables or a 16-byte aligned rope_table of "
            "rotary_dim ",
            rotary_dim, " with positions (DeviceRopeTable)"));
      }
      break;
    case PositionVariant::kAlibi:
      if (params.alibi_slopes == nullptr) {
        return absl::InvalidArgumentError("PagedAttention: ALiBi needs alibi_slopes");
      }
      break;
    case PositionVariant::kRelativeBias:
      if (params.relative_bias == nullptr || params.relative_bias_rows <= 0) {
        return absl::InvalidArgumentError("PagedAttention: T5 bias needs relative_bias rows");
      }
      break;
    case PositionVariant::kNone: break;
  }
  return absl::OkStatus();
}

absl::Status ValidateBuffers(const void* q, int64_t q_stride, const void* keys, const void* values,
                             const void* out, int64_t out_stride, const AttentionParams& params) {
  const int64_t width = int64_t(params.num_heads) * params.head_dim;
  if (q == nullptr || keys == nullptr || values == nullptr || out == nullptr) {
    return absl::InvalidArgumentError("PagedAttention: null q, pages or out");
  }
  if (q_stride < width || out_stride < width) {
    return absl::InvalidArgumentError(absl::StrCat("PagedAttention: q_stride ", q_stride,
                                                   " and out_stride ", out_stride,
                                                   " must be at least ", width));
  }
  const auto misaligned = [](const void* p, uintptr_t bytes) {
    return reinterpret_cast<uintptr_t>(p) % bytes != 0;
  };
  if (misaligned(keys, 16) || misaligned(values, 16)) {
    return absl::InvalidArgumentError("PagedAttention: the pages must be 16-byte aligned");
  }
  if (misaligned(out, 4) || out_stride % 2 != 0) {
    return absl::InvalidArgumentError(
        "PagedAttention: out must be 4-byte aligned with an even out_stride");
  }
  return absl::OkStatus();
}

attention::PositionArgs MakePositionArgs(const AttentionParams& params, PositionVariant variant) {
  attention::PositionArgs p{};
  if (attention::IsRope(variant)) {
    p.seq_rope_tables = params.seq_rope_tables;
    p.rope_table = params.rope_table;
    p.rotary_dim = params.position->rope.rotary_dim;
    p.rope_sin_offset = RopeSinOffset(p.rotary_dim);
    p.rope_row_floats = RopeRowFloats(p.rotary_dim);
  }
  if (variant == PositionVariant::kAlibi) {
    p.alibi_slopes = params.alibi_slopes;
    p.alibi_bf16_key_position_form = params.position->alibi.bf16_key_position_form;
    p.alibi_bias_scale = params.position->alibi.bias_scale;
  }
  if (variant == PositionVariant::kRelativeBias) {
    p.relative_bias = params.relative_bias;
    p.relative_bias_last_row = params.relative_bias_rows - 1;
  }
  return p;
}

}  // namespace

template <typename T>
absl::Status PagedAttention(const T* q, int64_t q_stride, KvLayerView<const T> layer,
                            const KvGeometry& geometry, const RaggedBatchView& batch,
                            const AttentionParams& params, const PagedAttentionPlan& plan, T* out,
                            int64_t out_stride, cudaStream_t stream) {
  const PlanState& state = *attention::PlanAccess::Get(plan);
  RETURN_IF_ERROR(ValidateHeads(params));
  ASSIGN_OR_RETURN(const PositionVariant variant, VariantOf(params));
  RETURN_IF_ERROR(ValidateRun(state, params, geometry, batch, variant));
  RETURN_IF_ERROR(ValidateBuffers(q, q_stride, layer.keys, layer.values, out, out_stride, params));

  attention::KernelCommon<T> common{};
  common.q = q;
  common.q_stride = q_stride;
  common.keys = layer.keys;
  common.values = layer.values;
  common.block_size = geometry.block_size;
  common.block_stride = geometry.BlockStride();
  common.head_stride = geometry.HeadStride();
  common.block_tables = batch.block_tables;
  common.max_blocks_per_seq = batch.max_blocks_per_seq;
  common.seqs = state.At<const SeqInfo>(0);
  common.num_heads = params.num_heads;
  common.num_kv_heads = params.num_kv_heads;
  common.group = params.num_heads / params.num_kv_heads;
  common.sliding_window = params.sliding_window;
  common.score_scale = params.softmax_scale * 1.4426950408889634f;  // to base 2
  common.position = MakePositionArgs(params, variant);
  common.out = out;
  common.out_stride = out_stride;

  if (!state.decode_items.empty()) {
    attention::DecodeArgs<T> args{common,
                                  state.At<const DecodeItem>(state.decode_at),
                                  state.kv_chunks,
                                  state.heads_per_warp,
                                  state.table_stride,
                                  state.At<float>(state.partial_ml_at),
                                  state.At<float>(state.partial_acc_at)};
    attention::LaunchShape shape{dim3(unsigned(state.decode_items.size()),
                                      unsigned(state.kv_chunks * state.query_sub_groups)),
                                 dim3(unsigned(state.decode_warps * 32)), state.decode_shared,
                                 stream};
    RETURN_IF_ERROR(attention::LaunchDecode<T>(variant, params.head_dim, args, shape));
  }
  if (!state.combine_items.empty()) {
    attention::CombineArgs<T> args{common.seqs,
                                   state.At<const CombineItem>(state.combine_at),
                                   params.num_heads,
                                   params.head_dim,
                                   state.At<const float>(state.partial_ml_at),
                                   state.At<const float>(state.partial_acc_at),
                                   out,
                                   out_stride};
    attention::LaunchShape shape{
        dim3(unsigned(state.combine_items.size()), unsigned(params.num_heads)),
        dim3(attention::kCombineThreads), 0, stream};
    RETURN_IF_ERROR(attention::LaunchCombine<T>(args, shape));
  }
  if (!state.prefill_items.empty()) {
    attention::PrefillArgs<T> args{common, state.At<const PrefillItem>(state.prefill_at)};
    attention::LaunchShape shape{
        dim3(unsigned(state.prefill_items.size()), unsigned(params.num_kv_heads)),
        dim3(attention::kPrefillWarps * 32), state.prefill_shared, stream};
    RETURN_IF_ERROR(attention::LaunchPrefill<T>(variant, params.head_dim, args, shape));
  }
  return absl::OkStatus();
}

template absl::Status PagedAttention<__nv_bfloat16>(
    const __nv_bfloat16* q, int64_t q_stride, KvLayerView<const __nv_bfloat16> layer,
    const KvGeometry& geometry, const RaggedBatchView& batch, const AttentionParams& params,
    const PagedAttentionPlan& plan, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream);
template absl::Status PagedAttention<__half>(
    const __half* q, int64_t q_stride, KvLayerView<const __half> layer, const KvGeometry& geometry,
    const RaggedBatchView& batch, const AttentionParams& params, const PagedAttentionPlan& plan,
    __half* out, int64_t out_stride, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
