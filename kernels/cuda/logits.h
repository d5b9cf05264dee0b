// The f32 end of the CUDA forward pass: the LM head's bias on f32 logits (the logits GEMM itself
// is MatMulTransposedB<T, float> in gemm.h) and a greedy argmax per row, so a greedy step copies
// one token id per row to the host instead of a vocabulary of logits. Device pointers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace ropewire::kernels::cuda {

// logits[r, i] += bias[i] for i < vocab; bias in the storage type T (__nv_bfloat16 or __half).
template <typename T>
absl::Status AddBiasToLogits(float* logits, int64_t stride, const T* bias, int64_t rows,
                             int64_t vocab, cudaStream_t stream);

// token_ids[r] = the index of the largest of logits[r, 0 .. cols), the first one on ties, as
// std::max_element picks it on the host. NaN is never picked; a row of NaN alone gives 0.
// cols must fit an int32.
absl::Status ArgmaxRows(const float* logits, int64_t stride, int64_t rows, int64_t cols,
                        int32_t* token_ids, cudaStream_t stream);

}  // namespace ropewire::kernels::cuda
