#include "model/cuda/step_inputs.h"

#include <algorithm>
#include <cstring>

#include "kernels/cuda/cuda_status.h"

namespace ropewire::model::cuda {

StepInputs::~StepInputs() {
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
}

absl::Status StepInputs::Reserve(int64_t count) {
  if (count <= capacity_) return absl::OkStatus();
  const int64_t grown = std::max(count, 2 * capacity_);
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
  pinned_ = nullptr;
  capacity_ = 0;
  CUDA_RETURN_IF_ERROR(cudaMallocHost(reinterpret_cast<void**>(&pinned_), grown * sizeof(int32_t)));
  auto device = kernels::cuda::DeviceBuffer::Allocate(grown * sizeof(int32_t));
  if (!device.ok()) return device.status();
  device_ = std::move(*device);
  capacity_ = grown;
  return absl::OkStatus();
}

absl::Status StepInputs::Upload(const StepPlan& plan, cudaStream_t stream) {
  const int64_t tokens = plan.num_tokens();
  const int64_t seqs = plan.num_seqs();
  num_tokens_ = tokens;
  // Layout: token ids, positions, slots, logits rows, query_start, kv_len, offsets, tables.
  const int64_t count = 3 * tokens + static_cast<int64_t>(plan.logits_rows.size()) + (seqs + 1) +
                        2 * seqs + static_cast<int64_t>(plan.block_tables.size());
  if (absl::Status s = Reserve(std::max<int64_t>(count, 1)); !s.ok()) return s;
  int64_t at = 0;
  auto put = [&](const std::vector<int32_t>& src, int64_t n) {
    if (n > 0) std::memcpy(pinned_ + at, src.data(), n * sizeof(int32_t));
    const int64_t start = at;
    at += n;
    return start;
  };
  token_ids_ = put(plan.token_ids, tokens);
  positions_ = put(plan.positions, tokens);
  slots_ = put(plan.slots, tokens);
  logits_rows_ = put(plan.logits_rows, static_cast<int64_t>(plan.logits_rows.size()));
  const int64_t query_start = put(plan.query_start, seqs + 1);
  const int64_t kv_len = put(plan.kv_len, seqs);
  const int64_t offsets = put(plan.position_offset, seqs);
  const int64_t tables = put(plan.block_tables, static_cast<int64_t>(plan.block_tables.size()));
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device_.get(), pinned_, at * sizeof(int32_t),
                                       cudaMemcpyHostToDevice, stream));
  batch_.num_seqs = static_cast<int>(seqs);
  batch_.query_start = Device(query_start);
  batch_.kv_len = Device(kv_len);
  batch_.position_offset = Device(offsets);
  batch_.block_tables = Device(tables);
  batch_.max_blocks_per_seq = plan.max_blocks_per_seq;
  max_query_len_ = plan.max_query_len;
  max_kv_len_ = plan.max_kv_len;
  num_decode_seqs_ = plan.num_decode_seqs;
  return absl::OkStatus();
}

}  // namespace ropewire::model::cuda
