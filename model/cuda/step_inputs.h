// One step's plan on the GPU: the integer arrays the kernels read (token ids, positions, cache
// slots, the ragged-batch view, the rows that need logits) exactly as the StepPlan holds them,
// copied in one transfer from a pinned host buffer, grown, never shrunk, as steps get larger.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/paged_kv.h"
#include "model/step_plan.h"

namespace ropewire::model::cuda {

class StepInputs {
 public:
  StepInputs() = default;
  StepInputs(const StepInputs&) = delete;
  StepInputs& operator=(const StepInputs&) = delete;
  ~StepInputs();

  // Lays the plan out and enqueues its copy to the device on `stream`. The host staging buffer
  // is reused by the next Upload, so the caller synchronises the stream between steps (the
  // runner does: it waits for the logits).
  absl::Status Upload(const StepPlan& plan, cudaStream_t stream);

  // Device pointers, valid until the next Upload.
  const int32_t* token_ids() const { return Device(token_ids_); }
  const int32_t* positions() const { return Device(positions_); }
  const int32_t* slots() const { return Device(slots_); }
  const int32_t* logits_rows() const { return Device(logits_rows_); }
  // The ragged batch with device pointers (DESIGN.md decision 3: the CPU's view, on the GPU).
  kernels::RaggedBatchView batch() const { return batch_; }
  // The plan's host figures the attention dispatch sizes its launch by.
  int max_query_len() const { return max_query_len_; }
  int max_kv_len() const { return max_kv_len_; }
  int num_decode_seqs() const { return num_decode_seqs_; }
  int64_t num_tokens() const { return num_tokens_; }

 private:
  const int32_t* Device(int64_t offset) const { return device_.get<const int32_t>() + offset; }
  absl::Status Reserve(int64_t count);

  int32_t* pinned_ = nullptr;  // host staging, cudaMallocHost
  int64_t capacity_ = 0;       // int32 elements of pinned_ and device_
  kernels::cuda::DeviceBuffer device_;
  int64_t token_ids_ = 0, positions_ = 0, slots_ = 0, logits_rows_ = 0;
  kernels::RaggedBatchView batch_;
  int max_query_len_ = 0, max_kv_len_ = 0, num_decode_seqs_ = 0;
  int64_t num_tokens_ = 0;
};

}  // namespace ropewire::model::cuda
