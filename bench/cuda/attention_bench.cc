// ropewire-bench-cuda-attention: decode attention on the GPU against the device's own copy
// bandwidth, measured in the same run (README.md here).
//
// One attention layer shaped like Llama-3-8B (32 query heads, 8 KV heads, head_dim 128, bf16,
// blocks of 16 tokens) decodes one token for each sequence of two batches: 64 x 4096 and
// 1 x 32768 cached tokens. Decode attention reads every cached key and value once, so its
// effective bandwidth (bytes of K/V, queries and outputs over the time) against what
// cudaMemcpyDeviceToDevice reaches tells how close it runs to the memory. Variants of the same
// kernel, interleaved round after round so drifts hit all alike:
//   rope         keys cached un-rotated, rotated while attending (ropewire's design)
//   none         no position term
//   alibi        ALiBi score bias
//   rope+contig  rope with each sequence's blocks in order 0..n instead of shuffled
// Each reports the median over rounds of the mean time of a call.
//
//   ropewire-bench-cuda-attention [--cases 64x4096,1x32768] [--rounds 15] [--calls 20]
//                                 [--json out.json]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/cli_flags.h"
#include "base/status_macros.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/paged_attention.h"
#include "nlohmann/json.hpp"

namespace ropewire::bench {
namespace {

using kernels::cuda::CudaStatus;
using kernels::cuda::DeviceBuffer;
using nlohmann::json;
using Bf16 = __nv_bfloat16;

constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockSize = 16;

struct Options {
  std::string cases = "64x4096,1x32768";  // batch x cached tokens
  int rounds = 15;
  int calls = 20;
  int copy_mib = 1024;
  std::string json_path;
};

class Events {
 public:
  Events() {
    cudaEventCreate(&start_);
    cudaEventCreate(&stop_);
  }
  ~Events() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  cudaEvent_t start() const { return start_; }
  cudaEvent_t stop() const { return stop_; }
  absl::StatusOr<double> Millis() const {
    CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start_, stop_));
    return double(ms);
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

// GB/s of cudaMemcpyDeviceToDevice over `mib` MiB, counting the bytes read and written.
absl::StatusOr<double> CopyBandwidth(int mib, int rounds, cudaStream_t stream) {
  const size_t bytes = size_t(mib) << 20;
  ASSIGN_OR_RETURN(DeviceBuffer src, DeviceBuffer::Allocate(bytes));
  ASSIGN_OR_RETURN(DeviceBuffer dst, DeviceBuffer::Allocate(bytes));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(src.get(), 1, bytes, stream));
  Events events;
  std::vector<double> rates;
  for (int r = 0; r < rounds + 2; ++r) {
    CUDA_RETURN_IF_ERROR(cudaEventRecord(events.start(), stream));
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, stream));
    CUDA_RETURN_IF_ERROR(cudaEventRecord(events.stop(), stream));
    ASSIGN_OR_RETURN(const double ms, events.Millis());
    if (r >= 2) rates.push_back(2.0 * double(bytes) / (ms * 1e-3) / 1e9);  // 2 warm-ups
  }
  return Median(rates);
}

// Fills `buffer` with random bf16 values from one 16 MiB host pattern copied over and over.
absl::Status FillRandom(DeviceBuffer& buffer, uint32_t seed, cudaStream_t stream) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Bf16> pattern(size_t(8) << 20);
  for (Bf16& x : pattern) x = __float2bfloat16(normal(rng));
  const size_t pattern_bytes = pattern.size() * sizeof(Bf16);
  for (size_t at = 0; at < buffer.bytes(); at += pattern_bytes) {
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(buffer.get<unsigned char>() + at, pattern.data(),
                                         std::min(pattern_bytes, buffer.bytes() - at),
                                         cudaMemcpyHostToDevice, stream));
  }
  return CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

// One decode batch: pages, queries, outputs and the host and device views of the batch, with
// block tables in shuffled and in contiguous order. The pages hold `sets` copies of the batch
// (disjoint blocks) that successive calls rotate through, so that together they are many times
// the L2 cache and no call finds the previous one's keys there.
struct DecodeBatch {
  int batch = 0, context = 0, sets = 1;
  kernels::KvGeometry geometry;
  DeviceBuffer keys, values, q, out, query_start, kv_len, offsets;
  std::vector<DeviceBuffer> shuffled_tables, contiguous_tables;  // per set
  std::vector<int32_t> host_query_start, host_kv_len, host_offsets, host_tables;
  int max_blocks = 0;

  kernels::RaggedBatchView HostView() const {
    return {batch,
            host_query_start.data(),
            host_kv_len.data(),
            host_offsets.data(),
            host_tables.data(),
            max_blocks};
  }
  kernels::RaggedBatchView DeviceView(bool contiguous, int set) const {
    const DeviceBuffer& tables = contiguous ? contiguous_tables[set] : shuffled_tables[set];
    return {batch,
            query_start.get<const int32_t>(),
            kv_len.get<const int32_t>(),
            offsets.get<const int32_t>(),
            tables.get<const int32_t>(),
            max_blocks};
  }
  // K/V bytes read, plus the query read and the output written.
  double BytesMoved() const {
    const double kv = 2.0 * batch * double(context) * kKvHeads * kHeadDim * sizeof(Bf16);
    return kv + 2.0 * batch * kHeads * kHeadDim * sizeof(Bf16);
  }
};

absl::StatusOr<DecodeBatch> MakeDecodeBatch(int batch, int context, int64_t l2_bytes,
                                            cudaStream_t stream) {
  DecodeBatch b;
  b.batch = batch;
  b.context = context;
  b.max_blocks = (context + kBlockSize - 1) / kBlockSize;
  const int blocks_per_set = batch * b.max_blocks;
  const double set_bytes = 2.0 * blocks_per_set * kBlockSize * kKvHeads * kHeadDim * sizeof(Bf16);
  b.sets = std::clamp(int(std::ceil(8.0 * double(l2_bytes) / set_bytes)), 1, 8);
  b.geometry = {b.sets * blocks_per_set, kBlockSize, kKvHeads, kHeadDim};
  const size_t page_bytes = size_t(b.geometry.LayerElements()) * sizeof(Bf16);
  ASSIGN_OR_RETURN(b.keys, DeviceBuffer::Allocate(page_bytes));
  ASSIGN_OR_RETURN(b.values, DeviceBuffer::Allocate(page_bytes));
  ASSIGN_OR_RETURN(b.q, DeviceBuffer::Allocate(size_t(batch) * kHeads * kHeadDim * sizeof(Bf16)));
  ASSIGN_OR_RETURN(b.out, DeviceBuffer::Allocate(b.q.bytes()));
  RETURN_IF_ERROR(FillRandom(b.keys, 1, stream));
  RETURN_IF_ERROR(FillRandom(b.values, 2, stream));
  RETURN_IF_ERROR(FillRandom(b.q, 3, stream));
  std::mt19937 rng(4);
  for (int set = 0; set < b.sets; ++set) {
    std::vector<int32_t> contiguous(blocks_per_set);
    std::iota(contiguous.begin(), contiguous.end(), set * blocks_per_set);
    b.host_tables = contiguous;
    std::shuffle(b.host_tables.begin(), b.host_tables.end(), rng);
    ASSIGN_OR_RETURN(DeviceBuffer shuffled, DeviceBuffer::FromHost(b.host_tables));
    ASSIGN_OR_RETURN(DeviceBuffer in_order, DeviceBuffer::FromHost(contiguous));
    b.shuffled_tables.push_back(std::move(shuffled));
    b.contiguous_tables.push_back(std::move(in_order));
  }
  for (int s = 0; s <= batch; ++s) b.host_query_start.push_back(s);
  b.host_kv_len.assign(batch, context);
  b.host_offsets.assign(batch, 0);
  ASSIGN_OR_RETURN(b.query_start, DeviceBuffer::FromHost(b.host_query_start));
  ASSIGN_OR_RETURN(b.kv_len, DeviceBuffer::FromHost(b.host_kv_len));
  ASSIGN_OR_RETURN(b.offsets, DeviceBuffer::FromHost(b.host_offsets));
  return b;
}

// A position variant with its device data and its plan for the batch.
struct Variant {
  std::string name;
  bool contiguous = false;
  kernels::PositionEncoding position;
  kernels::cuda::DeviceRopeTable rope_table;
  kernels::cuda::DeviceScoreBias bias;
  kernels::cuda::AttentionParams params;
  kernels::cuda::PagedAttentionPlan plan;
  std::vector<double> millis;  // mean time of a call, per round
};

absl::Status PrepareVariant(Variant& v, const DecodeBatch& b, cudaStream_t stream) {
  v.params.num_heads = kHeads;
  v.params.num_kv_heads = kKvHeads;
  v.params.head_dim = kHeadDim;
  v.params.softmax_scale = 1.0f / std::sqrt(float(kHeadDim));
  v.params.position = &v.position;
  if (v.position.kind == kernels::PositionKind::kRope) {
    kernels::RopeTable host(v.position.rope);
    host.EnsureCapacity(b.context, /*exact=*/true);
    ASSIGN_OR_RETURN(v.rope_table, kernels::cuda::DeviceRopeTable::Upload(host, stream));
    v.params.rope_table = v.rope_table.view();
  }
  ASSIGN_OR_RETURN(v.bias, kernels::cuda::DeviceScoreBias::Upload(v.position, kHeads));
  v.params.alibi_slopes = v.bias.alibi_slopes();
  return v.plan.Prepare(b.HostView(), v.params, stream);
}

std::vector<Variant> MakeVariants() {
  std::vector<Variant> variants(4);
  variants[0].name = "rope";
  variants[0].position.kind = kernels::PositionKind::kRope;
  variants[0].position.rope.rotary_dim = kHeadDim;
  variants[0].position.rope.inv_freq = kernels::DefaultInverseFrequencies(500000.0, kHeadDim);
  variants[1].name = "none";
  variants[2].name = "alibi";
  variants[2].position.kind = kernels::PositionKind::kAlibi;
  variants[2].position.alibi.slopes = kernels::AlibiSlopes(kHeads);
  variants[3] = Variant{};
  variants[3].name = "rope+contig";
  variants[3].contiguous = true;
  variants[3].position = variants[0].position;
  return variants;
}

absl::Status TimeRound(Variant& v, const DecodeBatch& b, int calls, cudaStream_t stream) {
  Events events;
  auto call = [&](int i) {
    return kernels::cuda::PagedAttention<Bf16>(
        b.q.get<const Bf16>(), kHeads * kHeadDim,
        {b.keys.get<const Bf16>(), b.values.get<const Bf16>()}, b.geometry,
        b.DeviceView(v.contiguous, i % b.sets), v.params, v.plan, b.out.get<Bf16>(),
        kHeads * kHeadDim, stream);
  };
  RETURN_IF_ERROR(call(b.sets - 1));  // warm-up, outside the events
  CUDA_RETURN_IF_ERROR(cudaEventRecord(events.start(), stream));
  for (int i = 0; i < calls; ++i) RETURN_IF_ERROR(call(i));
  CUDA_RETURN_IF_ERROR(cudaEventRecord(events.stop(), stream));
  ASSIGN_OR_RETURN(const double ms, events.Millis());
  v.millis.push_back(ms / calls);
  return absl::OkStatus();
}

double MedianMillis(const std::vector<Variant>& variants, const std::string& name) {
  for (const Variant& v : variants) {
    if (v.name == name) return Median(v.millis);
  }
  return 0.0;
}

absl::StatusOr<json> RunDecodeCase(int batch, int context, double copy_gbps, int64_t l2_bytes,
                                   const Options& options, cudaStream_t stream) {
  ASSIGN_OR_RETURN(DecodeBatch b, MakeDecodeBatch(batch, context, l2_bytes, stream));
  std::vector<Variant> variants = MakeVariants();
  for (Variant& v : variants) RETURN_IF_ERROR(PrepareVariant(v, b, stream));
  for (int r = 0; r < options.rounds; ++r) {
    for (Variant& v : variants) RETURN_IF_ERROR(TimeRound(v, b, options.calls, stream));
  }
  const std::string label = absl::StrCat(batch, " x ", context);
  json rows = json::array();
  for (const Variant& v : variants) {
    const double ms = Median(v.millis);
    const double gbps = b.BytesMoved() / (ms * 1e-3) / 1e9;
    std::printf("%-12s %-12s %10.1f %9.0f %8.1f %%   (%d decode blocks, %d keys per partition)\n",
                label.c_str(), v.name.c_str(), ms * 1e3, gbps, 100.0 * gbps / copy_gbps,
                v.plan.decode_blocks(), v.plan.partition_keys());
    rows.push_back({{"variant", v.name},
                    {"median_us", ms * 1e3},
                    {"effective_gbps", gbps},
                    {"fraction_of_copy", gbps / copy_gbps},
                    {"decode_blocks", v.plan.decode_blocks()},
                    {"partition_keys", v.plan.partition_keys()}});
  }
  const double none = MedianMillis(variants, "none");
  const json ratios = {{"rope_over_none", MedianMillis(variants, "rope") / none},
                       {"alibi_over_none", MedianMillis(variants, "alibi") / none},
                       {"paged_over_contiguous",
                        MedianMillis(variants, "rope") / MedianMillis(variants, "rope+contig")}};
  std::printf(
      "%-12s ratios: rope/none %.3f (goal <= 1.05), alibi/none %.3f (goal <= 1.03), "
      "shuffled/contiguous blocks %.3f (goal <= 1.03)\n",
      label.c_str(), ratios["rope_over_none"].get<double>(),
      ratios["alibi_over_none"].get<double>(), ratios["paged_over_contiguous"].get<double>());
  return json{{"batch", batch},
              {"context", context},
              {"page_sets_rotated", b.sets},
              {"kv_bytes_read", b.BytesMoved()},
              {"variants", rows},
              {"ratios", ratios}};
}

// "64x4096,1x32768" -> {(64, 4096), (1, 32768)}.
absl::StatusOr<std::vector<std::pair<int, int>>> ParseCases(const std::string& text) {
  std::vector<std::pair<int, int>> cases;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const std::vector<std::string> parts = absl::StrSplit(item, 'x');
    int batch = 0, context = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &batch) ||
        !absl::SimpleAtoi(parts[1], &context) || batch <= 0 || context <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--cases: '", item, "' is not BATCHxCONTEXT (e.g. 64x4096)"));
    }
    cases.push_back({batch, context});
  }
  return cases;
}

absl::Status Run(const Options& options) {
  ASSIGN_OR_RETURN(const kernels::cuda::DeviceInfo device, kernels::cuda::GetDeviceInfo(0));
  int l2_bytes = 0;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device.index));
  cudaStream_t stream = nullptr;
  CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ASSIGN_OR_RETURN(const double copy_gbps, CopyBandwidth(options.copy_mib, options.rounds, stream));
  std::printf("device: %s (sm_%d%d)\n", device.name.c_str(), device.compute_major,
              device.compute_minor);
  std::printf("copy bandwidth (cudaMemcpy device to device, %d MiB, read + written): %.0f GB/s\n\n",
              options.copy_mib, copy_gbps);
  std::printf("%-12s %-12s %10s %9s %10s\n", "batch", "variant", "time (us)", "GB/s", "of copy");
  ASSIGN_OR_RETURN(const auto shapes, ParseCases(options.cases));
  json cases = json::array();
  for (const auto& [batch, context] : shapes) {
    ASSIGN_OR_RETURN(json result,
                     RunDecodeCase(batch, context, copy_gbps, l2_bytes, options, stream));
    cases.push_back(std::move(result));
  }
  CUDA_RETURN_IF_ERROR(cudaStreamDestroy(stream));
  if (!options.json_path.empty()) {
    const json out = {{"device", device.name},
                      {"copy_bandwidth_gbps", copy_gbps},
                      {"shape",
                       {{"heads", kHeads},
                        {"kv_heads", kKvHeads},
                        {"head_dim", kHeadDim},
                        {"block_size", kBlockSize},
                        {"dtype", "bf16"}}},
                      {"rounds", options.rounds},
                      {"calls_per_round", options.calls},
                      {"cases", cases}};
    std::ofstream(options.json_path) << out.dump(2) << "\n";
    std::printf("\nwrote %s\n", options.json_path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  ropewire::bench::Options options;
  ropewire::base::CliFlags flags(
      "ropewire-bench-cuda-attention [--cases 64x4096,1x32768] [--rounds N] [--calls N] "
      "[--json PATH]");
  flags.Add("cases", &options.cases, "comma-separated decode batches, BATCHxCONTEXT");
  flags.Add("rounds", &options.rounds, "rounds; each times every variant once");
  flags.Add("calls", &options.calls, "attention calls timed back to back per variant and round");
  flags.Add("copy-mib", &options.copy_mib, "MiB copied by the bandwidth probe");
  flags.Add("json", &options.json_path, "also write the results as JSON to this file");
  if (const absl::Status status = flags.Parse(argc, argv); !status.ok()) {
    std::fprintf(stderr, "%s\n%s", std::string(status.message()).c_str(), flags.Help().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::printf("%s", flags.Help().c_str());
    return 0;
  }
  if (ropewire::kernels::cuda::DeviceCount() == 0) {
    std::printf("no CUDA device visible: ropewire-bench-cuda-attention measured nothing\n");
    return 0;
  }
  if (const absl::Status status = ropewire::bench::Run(options); !status.ok()) {
    std::fprintf(stderr, "ropewire-bench-cuda-attention: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
