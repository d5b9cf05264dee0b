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

  // GB/s (1e9 bytes per second) of one pass over the whole buffer with a plain vector loop, and of
  // one with software prefetch ahead of the loads. A core keeps few demand misses in flight, so
  // prefetching reads faster on many machines; the machine's read bandwidth is the better of the
  // two, and the model benchmark holds its decode rate against that.
  struct Rates {
    double plain = 0.0;
    double prefetched = 0.0;
    double best() const { return plain > prefetched ? plain : prefetched; }
  };
  Rates Pass();
  int64_t bytes() const { return count_ * int64_t(sizeof(float)); }
  // Which summation kernel runs ("avx512f" or "portable"; the portable one never prefetches).
  static std::string KernelName();

 private:
  ReadBandwidthProbe() = default;
  double TimedSum(bool prefetch);
  float* data_ = nullptr;
  int64_t count_ = 0;
  int threads_ = 1;
  volatile float sink_ = 0.0f;  // keeps the sums observable
};

// Bytes of this process's anonymous memory backed by transparent huge pages (AnonHugePages of
// /proc/self/smaps_rollup), or -1 where that file is missing. Streaming reads through 4 KiB pages
// pay for page walks (dearly under virtualisation), so the benchmark reports how much of the
// weights sit in huge pages.
int64_t AnonHugePageBytes();

// Sustained FMA throughput in GFLOP/s (an FMA counts as 2 FLOPs) of `threads` threads each
// running independent vector FMA chains for about `seconds`.
double MeasureFmaPeak(int threads, double seconds);
// Which FMA kernel runs ("avx512f", "avx2" or "portable") and its lanes per instruction.
std::string FmaKernelName();

}  // namespace ropewire::bench
