// Matrix products of the CUDA forward pass through cuBLAS: activations [m, k] times a weight in
// torch.nn.Linear's [out_features, in_features] layout (as kernels/cpu/gemm.h's
// MatMulTransposedB), 16-bit inputs, f32 accumulation (CUBLAS_COMPUTE_32F, tensor cores), output
// in the storage type or in f32 (the LM head's logits, so the host sampler reads f32).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace ropewire::kernels::cuda {

// A cuBLAS status as absl::Status naming the failing call (OK for CUBLAS_STATUS_SUCCESS).
absl::Status BlasStatus(cublasStatus_t status, const char* call);

// An owned cuBLAS handle bound to one stream, with its own workspace: cuBLAS then never
// allocates during a GEMM, which CUDA graph capture of a decode step needs. Not thread-safe: one
// handle per stream (per engine thread).
class BlasHandle {
 public:
  // Hopper's recommended cuBLAS workspace (cuBLAS docs, cublasSetWorkspace).
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

  static absl::StatusOr<BlasHandle> Create(cudaStream_t stream);

  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  BlasHandle(BlasHandle&& other) noexcept;
  BlasHandle& operator=(BlasHandle&& other) noexcept;
  ~BlasHandle();

  // Moves the handle to another stream; re-attaches the workspace, which cublasSetStream resets.
  absl::Status SetStream(cudaStream_t stream);

  cublasHandle_t get() const { return handle_; }
  cudaStream_t stream() const { return stream_; }

 private:
  BlasHandle() = default;
  void Reset();

  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer workspace_;
};

// C[m, n] = A[m, k] · W[n, k]ᵀ, or C += that when `accumulate` (a residual added in place), on
// the handle's stream. Row-major with leading dimensions lda >= k, ldw >= k, ldc >= n (elements).
// T: __nv_bfloat16 or __half; Out: T or float. Sizes must fit cuBLAS's int32.
template <typename T, typename Out>
absl::Status MatMulTransposedB(BlasHandle& blas, const T* a, int64_t lda, const T* w, int64_t ldw,
                               Out* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                               bool accumulate = false);

}  // namespace ropewire::kernels::cuda
