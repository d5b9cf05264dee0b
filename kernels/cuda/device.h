// Device discovery for the CUDA backend.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ropewire::kernels::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  size_t total_memory = 0;
  size_t free_memory = 0;
};

// Number of usable CUDA devices; 0 (not an error) when there is no driver or no GPU.
int DeviceCount();
absl::StatusOr<DeviceInfo> GetDeviceInfo(int index);

}  // namespace ropewire::kernels::cuda
