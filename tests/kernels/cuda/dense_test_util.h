// Helpers of the CUDA dense-operation tests: host rounding to the storage types, random inputs,
// device arrays with poisoned guard regions, and checks that an output was written exactly where
// it should have been.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device_buffer.h"

#define ASSERT_OK(expr)                                                                \
  do {                                                                                 \
    const ::absl::Status ropewire_test_status_ = (expr);                               \
    ASSERT_TRUE(ropewire_test_status_.ok()) << #expr << ": " << ropewire_test_status_; \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(ROPEWIRE_CONCAT(ropewire_test_statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)         \
  auto tmp = (expr);                                      \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status(); \
  lhs = std::move(tmp).value()

namespace ropewire::kernels::cuda::dense_test {

inline float ToFloat(float v) { return v; }
inline float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float ToFloat(__half v) { return __half2float(v); }

template <typename T>
T FromFloat(float v);
template <>
inline float FromFloat<float>(float v) {
  return v;
}
template <>
inline __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
inline __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}

// Per storage type: the relative L2 error allowed against the f32 CPU reference. Rounding the
// output costs about 1.8e-3 (bf16) or 2.2e-4 (fp16) in RMS on these inputs, so the bounds leave
// room for the device's f32 math while still catching a term dropped or scaled by a percent.
template <typename T>
struct Dtype;
template <>
struct Dtype<__nv_bfloat16> {
  static constexpr double kTolerance = 5e-3;
  static constexpr const char* kName = "bf16";
};
template <>
struct Dtype<__half> {
  static constexpr double kTolerance = 1e-3;
  static constexpr const char* kName = "fp16";
};

// Uniform in offset ± scale, never within 1e-3 · scale of zero (an operation that drops a term
// must not be hidden by zero inputs).
inline std::vector<float> RandomValues(int64_t n, uint32_t seed, float scale = 1.0f,
                                       float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) {
    do {
      x = offset + uniform(rng);
    } while (std::abs(x) < 1e-3f * scale);
  }
  return v;
}

template <typename T>
std::vector<T> ToStorage(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FromFloat<T>(v[i]);
  return out;
}

template <typename E>
std::vector<float> ToFloats(const std::vector<E>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = ToFloat(v[i]);
  return out;
}

// `v` rounded to T and back: the exact values the device sees, handed to the CPU reference too.
template <typename T>
std::vector<float> Rounded(const std::vector<float>& v) {
  return ToFloats(ToStorage<T>(v));
}

// ‖out − ref‖ / ‖ref‖ in double.
inline double RelativeError(const std::vector<float>& out, const std::vector<float>& ref) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < ref.size() && i < out.size(); ++i) {
    diff += (double(out[i]) - ref[i]) * (double(out[i]) - ref[i]);
    norm += double(ref[i]) * ref[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// Every byte of a fresh output is 0xFF: NaN as bf16, fp16 and f32, so an element the kernel
// failed to write shows up as NaN, and an untouched guard still reads 0xFF.
inline constexpr unsigned char kPoisonByte = 0xFF;
// Guard on each side; 256 bytes keeps the array itself as aligned as cudaMalloc's memory.
inline constexpr size_t kGuardBytes = 256;

template <typename E>
class GuardedArray {
 public:
  static absl::StatusOr<GuardedArray> Poisoned(int64_t count) {
    GuardedArray array;
    array.count_ = count;
    ASSIGN_OR_RETURN(array.buffer_, DeviceBuffer::Allocate(count * sizeof(E) + 2 * kGuardBytes));
    CUDA_RETURN_IF_ERROR(cudaMemset(array.buffer_.get(), kPoisonByte, array.buffer_.bytes()));
    return array;
  }

  static absl::StatusOr<GuardedArray> FromHost(const std::vector<E>& values) {
    ASSIGN_OR_RETURN(GuardedArray array, Poisoned(static_cast<int64_t>(values.size())));
    if (!values.empty()) {
      CUDA_RETURN_IF_ERROR(cudaMemcpy(array.data(), values.data(), values.size() * sizeof(E),
                                      cudaMemcpyHostToDevice));
    }
    return array;
  }

  E* data() const { return reinterpret_cast<E*>(buffer_.get<unsigned char>() + kGuardBytes); }
  int64_t size() const { return count_; }

  // The array's elements after synchronising the device; an error when a guard byte changed.
  absl::StatusOr<std::vector<E>> Read() const {
    CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    std::vector<unsigned char> bytes(buffer_.bytes());
    CUDA_RETURN_IF_ERROR(
        cudaMemcpy(bytes.data(), buffer_.get(), bytes.size(), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < kGuardBytes; ++i) {
      if (bytes[i] != kPoisonByte) {
        return absl::InternalError(absl::StrCat("guard before the array overwritten at byte ", i));
      }
      if (bytes[bytes.size() - 1 - i] != kPoisonByte) {
        return absl::InternalError(
            absl::StrCat("guard after the array overwritten ", i, " bytes before its end"));
      }
    }
    std::vector<E> values(count_);
    if (count_ > 0) std::memcpy(values.data(), bytes.data() + kGuardBytes, count_ * sizeof(E));
    return values;
  }

 private:
  GuardedArray() = default;
  DeviceBuffer buffer_;
  int64_t count_ = 0;
};

// The rows × cols block of a row-major array with row stride `stride`, as floats. Adds a test
// failure when an element of the block is NaN (unwritten, since outputs start as NaN, or a NaN
// result) or when an element between rows (columns cols ... stride) is no longer the poison.
template <typename E>
std::vector<float> WrittenRows(const std::vector<E>& array, int64_t rows, int64_t cols,
                               int64_t stride, const std::string& what) {
  std::vector<float> block;
  block.reserve(rows * cols);
  int64_t unwritten = 0, overwritten = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < stride; ++i) {
      const E& e = array[r * stride + i];
      if (i < cols) {
        block.push_back(ToFloat(e));
        if (std::isnan(block.back())) ++unwritten;
      } else {
        const auto* raw = reinterpret_cast<const unsigned char*>(&e);
        for (size_t b = 0; b < sizeof(E); ++b) overwritten += raw[b] != kPoisonByte;
      }
    }
  }
  if (unwritten > 0) ADD_FAILURE() << what << ": " << unwritten << " elements NaN or never written";
  if (overwritten > 0)
    ADD_FAILURE() << what << ": " << overwritten << " bytes written between rows";
  return block;
}

// Element-wise equality, reporting the number of mismatches and the first of them (printing
// whole vectors of thousands of elements would bury the message).
inline void ExpectExact(const std::vector<float>& out, const std::vector<float>& expected,
                        const std::string& what) {
  ASSERT_EQ(out.size(), expected.size()) << what;
  int64_t mismatches = 0, first = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] != expected[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++mismatches;
    }
  }
  if (mismatches > 0) {
    ADD_FAILURE() << what << ": " << mismatches << " of " << out.size()
                  << " elements differ; first at " << first << ": " << out[first] << " vs "
                  << expected[first];
  }
}

// A compact rows × cols array laid out with row stride `stride`, the columns between rows
// holding the poison: a kernel that reads past a row pulls NaN into its result, and one that
// writes there is caught by WrittenRows.
template <typename E>
std::vector<E> WithPoisonGaps(const std::vector<E>& compact, int64_t rows, int64_t cols,
                              int64_t stride) {
  std::vector<E> strided(rows * stride);
  std::memset(static_cast<void*>(strided.data()), kPoisonByte, strided.size() * sizeof(E));
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(static_cast<void*>(strided.data() + r * stride), compact.data() + r * cols,
                cols * sizeof(E));
  }
  return strided;
}

}  // namespace ropewire::kernels::cuda::dense_test
