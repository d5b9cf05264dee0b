#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device.h"

namespace ropewire::kernels::cuda {

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

absl::StatusOr<DeviceInfo> GetDeviceInfo(int index) {
  cudaDeviceProp prop{};
  CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, index));
  CUDA_RETURN_IF_ERROR(cudaSetDevice(index));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&info.free_memory, &info.total_memory));
  return info;
}

}  // namespace ropewire::kernels::cuda
