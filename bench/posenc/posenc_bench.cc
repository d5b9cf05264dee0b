// ropewire-bench-posenc: decode-step cost of the positional encodings inside CPU paged attention.
//
// One attention layer of a Llama-3-8B-shaped model (32 query heads, 8 KV heads, head_dim 128)
// decodes one token for each of B sequences with C cached tokens. Variants of the same kernel:
//   rope_on_the_fly  keys cached un-rotated and rotated while attending (ropewire's design)
//   rope_prerotated  keys cached already rotated; only the query is rotated
//   none             no position term
//   alibi            ALiBi score bias (no rotation)
// Variants run interleaved, round after round, and each reports the median time of a step; the
// ratios on_the_fly / prerotated and alibi / none are what the design decision needs.
//
//   ropewire-bench-posenc [batch] [context] [rounds] [steps_per_round]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/paged_attention.h"
#include "kernels/rope_table.h"
#include "nlohmann/json.hpp"

namespace ropewire::bench {
namespace {

using Clock = std::chrono::steady_clock;
using kernels::PositionEncoding;
using kernels::PositionKind;

constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 128, kBlockSize = 16;

struct Setup {
  kernels::KvGeometry geometry;
  std::vector<float> keys, values, queries, out;
  std::vector<int32_t> query_start, kv_len, offsets, tables;
  int max_blocks = 0;
  kernels::RaggedBatchView View() const {
    kernels::RaggedBatchView view;
    view.num_seqs = static_cast<int>(kv_len.size());
    view.query_start = query_start.data();
    view.kv_len = kv_len.data();
    view.position_offset = offsets.data();
    view.block_tables = tables.data();
    view.max_blocks_per_seq = max_blocks;
    return view;
  }
};

Setup MakeSetup(int batch, int context) {
  Setup s;
  s.max_blocks = (context + kBlockSize - 1) / kBlockSize;
  s.geometry = {batch * s.max_blocks, kBlockSize, kKvHeads, kHeadDim};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  s.keys.resize(s.geometry.LayerElements());
  s.values.resize(s.geometry.LayerElements());
  for (auto& v : s.keys) v = normal(rng);
  for (auto& v : s.values) v = normal(rng);
  s.queries.resize(size_t(batch) * kHeads * kHeadDim);
  for (auto& v : s.queries) v = normal(rng);
  s.out.resize(s.queries.size());
  for (int b = 0; b <= batch; ++b) s.query_start.push_back(b);
  for (int b = 0; b < batch; ++b) {
    s.kv_len.push_back(context);
    s.offsets.push_back(0);
    for (int k = 0; k < s.max_blocks; ++k) s.tables.push_back(b * s.max_blocks + k);
  }
  return s;
}

PositionEncoding Rope() {
  PositionEncoding pe;
  pe.kind = PositionKind::kRope;
  pe.rope.rotary_dim = kHeadDim;
  pe.rope.inv_freq = kernels::DefaultInverseFrequencies(500000.0, kHeadDim);
  return pe;
}

PositionEncoding Alibi() {
  PositionEncoding pe;
  pe.kind = PositionKind::kAlibi;
  pe.alibi.slopes = kernels::AlibiSlopes(kHeads);
  return pe;
}

struct Variant {
  std::string name;
  PositionEncoding position;
  bool prerotated = false;
  std::vector<double> step_us;
};

double TimeSteps(Setup& s, const Variant& v, const kernels::RopeTable& table, int steps) {
  kernels::cpu::AttentionParams params;
  params.num_heads = kHeads;
  params.num_kv_heads = kKvHeads;
  params.head_dim = kHeadDim;
  params.softmax_scale = 1.0f / std::sqrt(float(kHeadDim));
  params.position = &v.position;
  params.rope_table = &table;
  params.keys_prerotated = v.prerotated;
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) {
    kernels::cpu::PagedAttention(s.queries.data(), kHeads * kHeadDim,
                                 {s.keys.data(), s.values.data()}, s.geometry, s.View(), params,
                                 s.out.data(), kHeads * kHeadDim);
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / steps;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace ropewire::bench

int main(int argc, char** argv) {
  using namespace ropewire::bench;
  const int batch = argc > 1 ? std::atoi(argv[1]) : 8;
  const int context = argc > 2 ? std::atoi(argv[2]) : 1024;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 9;
  const int steps = argc > 4 ? std::atoi(argv[4]) : 10;
  Setup setup = MakeSetup(batch, context);
  std::vector<Variant> variants = {{"rope_on_the_fly", Rope(), false, {}},
                                   {"rope_prerotated", Rope(), true, {}},
                                   {"none", PositionEncoding(), false, {}},
                                   {"alibi", Alibi(), false, {}}};
  ropewire::kernels::RopeTable table(Rope().rope);
  table.EnsureCapacity(context);
  for (auto& v : variants) TimeSteps(setup, v, table, 1);  // warm caches and thread pool
  for (int r = 0; r < rounds; ++r) {
    for (auto& v : variants) v.step_us.push_back(TimeSteps(setup, v, table, steps));
  }
  nlohmann::json report;
  report["shape"] = {{"batch", batch},          {"context", context},   {"heads", kHeads},
                     {"kv_heads", kKvHeads},    {"head_dim", kHeadDim}, {"rounds", rounds},
                     {"steps_per_round", steps}};
  for (const auto& v : variants) report["median_step_us"][v.name] = Median(v.step_us);
  const auto& m = report["median_step_us"];
  report["ratio_rope_on_the_fly_over_prerotated"] =
      m["rope_on_the_fly"].get<double>() / m["rope_prerotated"].get<double>();
  report["ratio_alibi_over_none"] = m["alibi"].get<double>() / m["none"].get<double>();
  std::printf("%s\n", report.dump(2).c_str());
  return 0;
}
