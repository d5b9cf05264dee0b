// Owning device allocations for the CUDA backend: plain cudaMalloc (never managed memory), freed
// on destruction, with errors as absl::Status naming the failing call.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/cuda_status.h"

namespace ropewire::kernels::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { Reset(); }

  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) {
    DeviceBuffer buffer;
    if (bytes > 0) CUDA_RETURN_IF_ERROR(cudaMalloc(&buffer.data_, bytes));
    buffer.bytes_ = bytes;
    return buffer;
  }

  // A buffer holding a copy of host memory (synchronous).
  template <typename T>
  static absl::StatusOr<DeviceBuffer> FromHost(const std::vector<T>& host) {
    auto buffer = Allocate(host.size() * sizeof(T));
    if (!buffer.ok()) return buffer.status();
    if (!host.empty()) {
      CUDA_RETURN_IF_ERROR(
          cudaMemcpy(buffer->data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    }
    return buffer;
  }

  template <typename T>
  absl::StatusOr<std::vector<T>> ToHost() const {
    std::vector<T> host(bytes_ / sizeof(T));
    if (!host.empty()) {
      CUDA_RETURN_IF_ERROR(
          cudaMemcpy(host.data(), data_, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
    }
    return host;
  }

  template <typename T = void>
  T* get() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void Reset() {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace ropewire::kernels::cuda
