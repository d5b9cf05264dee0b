// CUDA runtime errors as absl::Status, naming the failing call.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ropewire::kernels::cuda {

inline absl::Status CudaStatus(cudaError_t error, const char* call) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(call, " failed: ", cudaGetErrorName(error), ": ", cudaGetErrorString(error)));
}

}  // namespace ropewire::kernels::cuda

#define CUDA_RETURN_IF_ERROR(call)                                                               \
  do {                                                                                           \
    ::absl::Status ropewire_cuda_status_ = ::ropewire::kernels::cuda::CudaStatus((call), #call); \
    if (!ropewire_cuda_status_.ok()) return ropewire_cuda_status_;                               \
  } while (0)
