#include "bench/model/machine_probes.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

#include "kernels/cpu/x86_intrinsics.h"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point begin, Clock::time_point end) {
  return std::chrono::duration<double>(end - begin).count();
}

// Huge-page alignment: with transparent huge pages the probe streams through 2 MiB pages, so the
// figure is the memory system's, not the page walker's.
constexpr int64_t kBufferAlignment = int64_t(2) << 20;

// Each thread sums a contiguous slice; 64 floats per step keep the split vector-aligned.
void ThreadSlice(int64_t count, int thread, int threads, int64_t* begin, int64_t* end) {
  const int64_t steps = count / 64;
  *begin = steps * thread / threads * 64;
  *end = thread + 1 == threads ? count : steps * (thread + 1) / threads * 64;
}

float SumPortable(const float* x, int64_t begin, int64_t end) {
  // Sixteen partial sums so the compiler's vectorised loop is not bound by add latency.
  float partial[16] = {};
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    for (int j = 0; j < 16; ++j) partial[j] += x[i + j];
  }
  float sum = 0.0f;
  for (; i < end; ++i) sum += x[i];
  for (float p : partial) sum += p;
  return sum;
}

#ifdef ROPEWIRE_X86
// How far ahead the prefetching variant asks for lines: 1 KiB measured best on the AVX-512 Xeons
// this was tuned on (512 B - 2 KiB within 3% of each other; 4 KiB and beyond lose).
constexpr int64_t kPrefetchBytes = 1024;

template <bool kPrefetch>
__attribute__((target("avx512f"))) float SumAvx512(const float* x, int64_t begin, int64_t end) {
  // Eight independent accumulators: one 512-byte step per iteration hides the add latency, so
  // the loop is limited by how fast lines arrive from memory.
  __m512 acc[8];
  for (auto& a : acc) a = _mm512_setzero_ps();
  int64_t i = begin;
  for (; i + 128 <= end; i += 128) {
    if constexpr (kPrefetch) {
      const char* ahead = reinterpret_cast<const char*>(x + i) + kPrefetchBytes;
      for (int line = 0; line < 8; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T0);
    }
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(x + i + 16 * j));
  }
  for (int j = 1; j < 8; ++j) acc[0] = _mm512_add_ps(acc[0], acc[j]);
  return _mm512_reduce_add_ps(acc[0]) + SumPortable(x, i, end);
}
#endif

bool HasAvx512() {
#ifdef ROPEWIRE_X86
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

bool HasAvx2Fma() {
#ifdef ROPEWIRE_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

float SumSlice(const float* x, int64_t begin, int64_t end, bool prefetch) {
#ifdef ROPEWIRE_X86
  if (HasAvx512()) {
    return prefetch ? SumAvx512<true>(x, begin, end) : SumAvx512<false>(x, begin, end);
  }
#endif
  return SumPortable(x, begin, end);
}

// FMA chains: kChains independent accumulators per thread, each updated once per iteration.
// Twelve or more cover 4-cycle latency on two FMA ports with room to spare; the values converge
// (acc → b / (1 - a)) so nothing overflows or turns denormal.
constexpr int kChains = 16;
constexpr float kFmaA = 0.999f;
constexpr float kFmaB = 1e-3f;

#ifdef ROPEWIRE_X86
__attribute__((target("avx512f"))) float FmaChainsAvx512(int64_t iterations) {
  const __m512 a = _mm512_set1_ps(kFmaA);
  const __m512 b = _mm512_set1_ps(kFmaB);
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(float(c));
  for (int64_t i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  for (int c = 1; c < kChains; ++c) acc[0] = _mm512_add_ps(acc[0], acc[c]);
  return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) float FmaChainsAvx2(int64_t iterations) {
  const __m256 a = _mm256_set1_ps(kFmaA);
  const __m256 b = _mm256_set1_ps(kFmaB);
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(float(c));
  for (int64_t i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  for (int c = 1; c < kChains; ++c) acc[0] = _mm256_add_ps(acc[0], acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}
#endif

float FmaChainsPortable(int64_t iterations) {
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = float(c);
  for (int64_t i = 0; i < iterations; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * kFmaA + kFmaB;
  }
  float sum = 0.0f;
  for (float v : acc) sum += v;
  return sum;
}

// FLOPs one iteration of the selected kernel performs on one thread.
int FlopsPerIteration() {
  const int lanes = HasAvx512() ? 16 : HasAvx2Fma() ? 8 : 1;
  return 2 * lanes * kChains;
}

float FmaChains(int64_t iterations) {
#ifdef ROPEWIRE_X86
  if (HasAvx512()) return FmaChainsAvx512(iterations);
  if (HasAvx2Fma()) return FmaChainsAvx2(iterations);
#endif
  return FmaChainsPortable(iterations);
}

// Runs `iterations` on every thread at once; returns the wall time of the slowest.
double TimedFmaRun(int threads, int64_t iterations, float* sink) {
  Clock::time_point begin, end;
  float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
#pragma omp barrier
#pragma omp single
    begin = Clock::now();
    total += FmaChains(iterations);
#pragma omp barrier
#pragma omp single
    end = Clock::now();
  }
  *sink += total;
  return Seconds(begin, end);
}

}  // namespace

double ProbeSamples::Median() const {
  if (values.empty()) return 0.0;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

absl::StatusOr<ReadBandwidthProbe> ReadBandwidthProbe::Create(int64_t bytes, int threads) {
  if (bytes < kBufferAlignment) {
    return absl::InvalidArgumentError(absl::StrCat("bandwidth probe buffer of ", bytes,
                                                   " bytes is too small; use at least 2 MiB"));
  }
  const int64_t rounded = bytes / kBufferAlignment * kBufferAlignment;
  void* memory = std::aligned_alloc(kBufferAlignment, rounded);
  if (memory == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", rounded, " bytes for the bandwidth probe"));
  }
  madvise(memory, rounded, MADV_HUGEPAGE);  // a hint; without THP the probe still works
  ReadBandwidthProbe probe;
  probe.data_ = static_cast<float*>(memory);
  probe.count_ = rounded / int64_t(sizeof(float));
  probe.threads_ = std::max(1, threads);
  float* data = probe.data_;
  const int64_t count = probe.count_;
  // First touch by the thread that will read each slice places its pages near that thread.
#pragma omp parallel num_threads(probe.threads_)
  {
    int64_t begin, end;
    ThreadSlice(count, omp_get_thread_num(), omp_get_num_threads(), &begin, &end);
    for (int64_t i = begin; i < end; ++i) data[i] = 1.0f / float(1 + (i & 1023));
  }
  return probe;
}

ReadBandwidthProbe::ReadBandwidthProbe(ReadBandwidthProbe&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), count_(other.count_), threads_(other.threads_) {}

ReadBandwidthProbe& ReadBandwidthProbe::operator=(ReadBandwidthProbe&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    count_ = other.count_;
    threads_ = other.threads_;
  }
  return *this;
}

ReadBandwidthProbe::~ReadBandwidthProbe() { std::free(data_); }

ReadBandwidthProbe::Rates ReadBandwidthProbe::Pass() {
  Rates rates;
  rates.plain = TimedSum(/*prefetch=*/false);
  rates.prefetched = TimedSum(/*prefetch=*/true);
  return rates;
}

double ReadBandwidthProbe::TimedSum(bool prefetch) {
  const float* data = data_;
  const int64_t count = count_;
  float total = 0.0f;
  Clock::time_point begin, end;
#pragma omp parallel num_threads(threads_) reduction(+ : total)
  {
    int64_t first, last;
    ThreadSlice(count, omp_get_thread_num(), omp_get_num_threads(), &first, &last);
#pragma omp barrier
#pragma omp single
    begin = Clock::now();
    total += SumSlice(data, first, last, prefetch);
#pragma omp barrier
#pragma omp single
    end = Clock::now();
  }
  sink_ = sink_ + total;
  return double(bytes()) / Seconds(begin, end) / 1e9;
}

std::string ReadBandwidthProbe::KernelName() { return HasAvx512() ? "avx512f" : "portable"; }

double MeasureFmaPeak(int threads, double seconds) {
  threads = std::max(1, threads);
  float sink = 0.0f;
  // Calibrate on a short run, then size the timed run to last about `seconds`.
  int64_t iterations = int64_t(1) << 18;
  double elapsed = TimedFmaRun(threads, iterations, &sink);
  while (elapsed < 0.02) {
    iterations *= 4;
    elapsed = TimedFmaRun(threads, iterations, &sink);
  }
  iterations = std::max<int64_t>(1, int64_t(double(iterations) * seconds / elapsed));
  elapsed = TimedFmaRun(threads, iterations, &sink);
  volatile float keep = sink;
  (void)keep;
  return double(FlopsPerIteration()) * double(iterations) * threads / elapsed / 1e9;
}

int64_t AnonHugePageBytes() {
  std::ifstream in("/proc/self/smaps_rollup");
  if (!in) return -1;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("AnonHugePages:", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    int64_t kib = 0;
    fields >> kib;
    return kib * 1024;
  }
  return -1;
}

std::string FmaKernelName() {
  if (HasAvx512()) return "avx512f x16 lanes";
  if (HasAvx2Fma()) return "avx2+fma x8 lanes";
  return "portable scalar";
}

}  // namespace ropewire::bench
