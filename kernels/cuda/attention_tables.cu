// Position data of the CUDA paged attention on the device: RoPE cos/sin tables (one, or one per
// sequence of a step) and the ALiBi slopes / T5 bias by distance.
#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/paged_attention.h"

namespace ropewire::kernels::cuda {
namespace {

// The device row layout (paged_attention.h) of every position of a host table.
std::vector<float> DeviceRows(const RopeTable& table) {
  const int rotary_dim = table.spec().rotary_dim;
  const int half = table.half_dim();
  const int row_floats = RopeRowFloats(rotary_dim);
  const int sin_offset = RopeSinOffset(rotary_dim);
  std::vector<float> rows(size_t(table.capacity()) * row_floats, 0.0f);
  for (int64_t p = 0; p < table.capacity(); ++p) {
    float* row = rows.data() + p * row_floats;
    std::copy(table.Cos(p), table.Cos(p) + half, row);
    std::copy(table.Sin(p), table.Sin(p) + half, row + sin_offset);
  }
  return rows;
}

// RopeTableKey of the tables every step may use (the unscaled base, LongRoPE's long one); other
// keys (dynamic NTK beyond its base length) belong to one step.
bool PersistentKey(const RopeSpec& spec, int64_t key) {
  if (key == RopeTableKey(spec, 0)) return true;
  return spec.length_rule == RopeLengthRule::kLongRope;
}

// Where the T5 buckets of growing distances stop changing: the smallest distance from which on
// every larger one has the same bucket (checked at a few far distances).
absl::StatusOr<int64_t> SaturatedDistance(const RelativeBiasSpec& rb) {
  auto bucket = [&](int64_t distance) {
    return T5RelativePositionBucket(-distance, rb.bidirectional, rb.num_buckets, rb.max_distance);
  };
  const int64_t last = std::max<int64_t>({rb.max_distance, rb.num_buckets, 1});
  for (int64_t far : {2 * last, 64 * last, int64_t(1) << 40}) {
    if (bucket(far) != bucket(last)) {
      return absl::InvalidArgumentError(
          absl::StrCat("relative_bias: buckets still change beyond distance ", last,
                       " (num_buckets ", rb.num_buckets, ", max_distance ", rb.max_distance, ")"));
    }
  }
  return last;
}

}  // namespace

absl::StatusOr<DeviceRopeTable> DeviceRopeTable::Upload(const RopeTable& table,
                                                        cudaStream_t stream) {
  if (table.capacity() <= 0) {
    return absl::InvalidArgumentError(
        "DeviceRopeTable: the host table covers no position (call EnsureCapacity first)");
  }
  const int rotary_dim = table.spec().rotary_dim;
  if (rotary_dim < 2 || rotary_dim % 2 != 0 ||
      table.spec().inv_freq.size() != size_t(rotary_dim / 2)) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceRopeTable: rotary_dim ", rotary_dim,
                                                   " must be even with rotary_dim / 2 "
                                                   "inverse frequencies"));
  }
  const std::vector<float> rows = DeviceRows(table);
  DeviceRopeTable device;
  ASSIGN_OR_RETURN(device.buffer_, DeviceBuffer::Allocate(rows.size() * sizeof(float)));
  // Pageable source: staged before cudaMemcpyAsync returns, so `rows` may go out of scope.
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device.buffer_.get(), rows.data(),
                                       rows.size() * sizeof(float), cudaMemcpyHostToDevice,
                                       stream));
  device.capacity_ = table.capacity();
  device.rotary_dim_ = rotary_dim;
  return device;
}

DeviceRopeTableSet::DeviceRopeTableSet(const RopeSpec& spec)
    : spec_(spec), host_tables_(std::make_unique<RopeTableSet>(spec)) {}

DeviceRopeTableSet::~DeviceRopeTableSet() = default;

absl::Status DeviceRopeTableSet::Prepare(const RaggedBatchView& host_batch, cudaStream_t stream) {
  host_tables_->Prepare(host_batch);
  const RopeTable* const* tables = host_tables_->per_sequence();
  host_views_.assign(host_batch.num_seqs, DeviceRopeTableView{});
  std::set<int64_t> used;
  bool waited = false;
  auto wait_for_stream = [&]() -> absl::Status {
    if (!waited) CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    waited = true;
    return absl::OkStatus();
  };
  for (int s = 0; s < host_batch.num_seqs; ++s) {
    const int64_t length = int64_t(host_batch.position_offset[s]) + host_batch.kv_len[s];
    const int64_t key = RopeTableKey(spec_, length);
    auto it = uploaded_.find(key);
    if (it == uploaded_.end() || it->second.capacity() < tables[s]->capacity()) {
      if (it != uploaded_.end()) RETURN_IF_ERROR(wait_for_stream());  // replaced below
      ASSIGN_OR_RETURN(DeviceRopeTable table, DeviceRopeTable::Upload(*tables[s], stream));
      it = uploaded_.insert_or_assign(key, std::move(table)).first;
    }
    host_views_[s] = it->second.view();
    used.insert(key);
  }
  for (auto it = uploaded_.begin(); it != uploaded_.end();) {
    if (used.count(it->first) == 0 && !PersistentKey(spec_, it->first)) {
      RETURN_IF_ERROR(wait_for_stream());
      it = uploaded_.erase(it);
    } else {
      ++it;
    }
  }
  const size_t bytes = host_views_.size() * sizeof(DeviceRopeTableView);
  if (bytes > views_.bytes()) {
    RETURN_IF_ERROR(wait_for_stream());
    ASSIGN_OR_RETURN(views_, DeviceBuffer::Allocate(std::max(bytes, 2 * views_.bytes())));
  }
  if (bytes == 0) return absl::OkStatus();
  return CudaStatus(
      cudaMemcpyAsync(views_.get(), host_views_.data(), bytes, cudaMemcpyHostToDevice, stream),
      "cudaMemcpyAsync(RoPE table views)");
}

absl::StatusOr<DeviceScoreBias> DeviceScoreBias::Upload(const PositionEncoding& position,
                                                        int num_heads) {
  DeviceScoreBias bias;
  if (num_heads <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("DeviceScoreBias: num_heads ", num_heads));
  }
  if (position.kind == PositionKind::kAlibi) {
    if (position.alibi.slopes.size() < size_t(num_heads)) {
      return absl::InvalidArgumentError(
          absl::StrCat("DeviceScoreBias: ", position.alibi.slopes.size(), " ALiBi slopes for ",
                       num_heads, " heads"));
    }
    const std::vector<float> slopes(position.alibi.slopes.begin(),
                                    position.alibi.slopes.begin() + num_heads);
    ASSIGN_OR_RETURN(bias.slopes_, DeviceBuffer::FromHost(slopes));
  }
  if (position.kind == PositionKind::kRelativeBias) {
    const RelativeBiasSpec& rb = position.relative_bias;
    if (rb.num_buckets <= 0 || rb.num_heads < num_heads ||
        rb.table.size() != size_t(rb.num_buckets) * rb.num_heads) {
      return absl::InvalidArgumentError(absl::StrCat(
          "DeviceScoreBias: relative_bias table of ", rb.table.size(), " values for ",
          rb.num_buckets, " buckets x ", rb.num_heads, " heads (", num_heads, " needed)"));
    }
    ASSIGN_OR_RETURN(const int64_t last, SaturatedDistance(rb));
    std::vector<float> by_distance(size_t(last + 1) * num_heads);
    for (int64_t d = 0; d <= last; ++d) {
      const int bucket =
          T5RelativePositionBucket(-d, rb.bidirectional, rb.num_buckets, rb.max_distance);
      for (int h = 0; h < num_heads; ++h) {
        by_distance[size_t(d) * num_heads + h] = rb.table[size_t(bucket) * rb.num_heads + h];
      }
    }
    ASSIGN_OR_RETURN(bias.relative_bias_, DeviceBuffer::FromHost(by_distance));
    bias.relative_bias_rows_ = static_cast<int>(last + 1);
  }
  return bias;
}

}  // namespace ropewire::kernels::cuda
