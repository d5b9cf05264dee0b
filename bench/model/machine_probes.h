// Probes of what the machine can do at best with a given number of threads: the DRAM read
// bandwidth a streaming sum reaches and the FMA throughput of register-resident chains. The model
// benchmark divides its decode and prefill rates by these, measured in the same run, so that
// its fractions are about this machine at this moment (shared machines drift).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ropewire::bench {

struct ProbeSamples {
  std::vector<double> values;  // one per pass, in the order taken
  double Median() const;
};

// A buffer of f32 values, first touched by the threads that later read it, that the read
// bandwidth probe sums. Kept alive across passes so the passes can be interleaved with other
// measurements without paying the allocation again.
class ReadBandwidthProbe {
 public:
  static absl::StatusOr<ReadBandwidthProbe> Create(int64_t bytes, int threads);
  ReadBandwidthProbe(ReadBandwidthProbe&& other) noexcept;
  ReadBandwidthProbe& operator=(ReadBandwidthProbe&& other) noexcept;
  ~ReadBandwidthProbe();

  // One pass over the whole buffer; returns GB/s (1e9 bytes per second).
  double Pass();
  int64_t bytes() const { return count_ * int64_t(sizeof(float)); }
  // Which summation kernel runs ("avx512f" or "portable").
  static std::string KernelName();

 private:
  ReadBandwidthProbe() = default;
  float* data_ = nullptr;
  int64_t count_ = 0;
  int threads_ = 1;
  volatile float sink_ = 0.0f;  // keeps the sums observable
};

// Sustained FMA throughput in GFLOP/s (an FMA counts as 2 FLOPs) of `threads` threads each
// running independent vector FMA chains for about `seconds`.
double MeasureFmaPeak(int threads, double seconds);
// Which FMA kernel runs ("avx512f", "avx2" or "portable") and its lanes per instruction.
std::string FmaKernelName();

}  // namespace ropewire::bench
