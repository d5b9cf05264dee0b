#include "kernels/cpu/gemm.h"

#include <dnnl.h>

#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "kernels/cpu/skinny_gemm.h"

namespace ropewire::kernels::cpu {
namespace {

// Products with more rows than the skinny path takes run through oneDNN's matmul primitive: its
// brgemm kernels beat dnnl_sgemm by 5-20% on prefill shapes (M = 512, N and K 768-8192, two
// AVX-512 cores: 300-340 against 245-325 GFLOP/s), by up to 40% at M = 5-16, and make 512-token
// prefill of the benchmark models 8-12% faster (bench/model/README.md). A primitive is compiled
// for one exact shape (a runtime M falls back to a much slower kernel), about 0.2 ms and 90 KB
// each, so the rows are cut into pieces of few distinct sizes: tiles of kTileRows, then a
// multiple of kRowQuantum, then fewer than kRowQuantum rows. Whatever a step's token count, a
// weight shape needs at most 1 + kTileRows / kRowQuantum + kRowQuantum primitives (48), each
// compiled once and cached. Tiles of 512 rather than 128 rows are 5-8% faster on prefill.
constexpr int64_t kTileRows = 512;
constexpr int64_t kRowQuantum = 32;
// Cached primitives beyond this count are dropped all at once (then rebuilt on demand); a model
// uses a handful of weight shapes, so this only bounds pathological callers.
constexpr size_t kMaxCachedPrimitives = 4096;

struct MatmulKey {
  int64_t m, n, k, lda, ldb, ldc;
  bool transposed_b, accumulate;
  bool operator==(const MatmulKey& o) const {
    return m == o.m && n == o.n && k == o.k && lda == o.lda && ldb == o.ldb && ldc == o.ldc &&
           transposed_b == o.transposed_b && accumulate == o.accumulate;
  }
};

struct MatmulKeyHash {
  size_t operator()(const MatmulKey& key) const {
    size_t h = 0;
    for (int64_t v : {key.m, key.n, key.k, key.lda, key.ldb, key.ldc}) {
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    }
    return h * 4 + size_t(key.transposed_b) * 2 + size_t(key.accumulate);
  }
};

struct CachedMatmul {
  dnnl::matmul primitive;
  dnnl::memory::desc a, b, c;
};

dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// Null when oneDNN offers only its reference implementation for the shape (then sgemm is faster).
std::shared_ptr<const CachedMatmul> CreateMatmul(const MatmulKey& key) {
  using dnnl::memory;
  try {
    const memory::desc a({key.m, key.k}, memory::data_type::f32, {key.lda, 1});
    const memory::desc b({key.k, key.n}, memory::data_type::f32,
                         key.transposed_b ? memory::dims{1, key.ldb} : memory::dims{key.ldb, 1});
    const memory::desc c({key.m, key.n}, memory::data_type::f32, {key.ldc, 1});
    dnnl::primitive_attr attr;
    if (key.accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);  // C += A·B
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, CpuEngine());
    if (std::strncmp(pd.impl_info_str(), "ref", 3) == 0) return nullptr;
    return std::make_shared<const CachedMatmul>(CachedMatmul{dnnl::matmul(pd), a, b, c});
  } catch (const dnnl::error&) {
    return nullptr;
  }
}

std::shared_ptr<const CachedMatmul> GetMatmul(const MatmulKey& key) {
  static std::mutex* mu = new std::mutex;
  static auto* cache =
      new std::unordered_map<MatmulKey, std::shared_ptr<const CachedMatmul>, MatmulKeyHash>;
  {
    std::lock_guard<std::mutex> lock(*mu);
    const auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  std::shared_ptr<const CachedMatmul> created = CreateMatmul(key);  // compiles: not under the lock
  std::lock_guard<std::mutex> lock(*mu);
  if (cache->size() >= kMaxCachedPrimitives) cache->clear();
  return cache->emplace(key, std::move(created)).first->second;
}

void Sgemm(char transb, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
  dnnl_status_t st =
      dnnl_sgemm('N', transb, m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
  // Arguments are produced by ropewire itself; a failure here is a programming error.
  if (st != dnnl_success) std::abort();
}

// C[rows, n] (+)= A[rows, k] · B through a cached primitive, or sgemm when there is none.
void RunTile(bool transposed_b, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, int64_t rows, int64_t n, int64_t k, bool accumulate) {
  const MatmulKey key{rows, n, k, lda, ldb, ldc, transposed_b, accumulate};
  const std::shared_ptr<const CachedMatmul> matmul = GetMatmul(key);
  if (matmul == nullptr) {
    Sgemm(transposed_b ? 'T' : 'N', a, lda, b, ldb, c, ldc, rows, n, k, accumulate);
    return;
  }
  thread_local dnnl::stream stream(CpuEngine());
  const dnnl::memory a_mem(matmul->a, CpuEngine(), const_cast<float*>(a));
  const dnnl::memory b_mem(matmul->b, CpuEngine(), const_cast<float*>(b));
  const dnnl::memory c_mem(matmul->c, CpuEngine(), c);
  matmul->primitive.execute(
      stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
  stream.wait();
}

void Gemm(bool transposed_b, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
          int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = 0, or C unchanged when accumulating
    if (!accumulate) {
      for (int64_t r = 0; r < m; ++r) std::memset(c + r * ldc, 0, sizeof(float) * n);
    }
    return;
  }
  for (int64_t row = 0; row < m;) {
    const int64_t left = m - row;
    const int64_t rows = left >= kTileRows     ? kTileRows
                         : left >= kRowQuantum ? left / kRowQuantum * kRowQuantum
                                               : left;
    RunTile(transposed_b, a + row * lda, lda, b, ldb, c + row * ldc, ldc, rows, n, k, accumulate);
    row += rows;
  }
}

}  // namespace

void MatMulTransposedB(const float* a, int64_t lda, const float* w, int64_t ldw, float* c,
                       int64_t ldc, int64_t m, int64_t n, int64_t k, bool accumulate) {
  // Decode-shaped products are bound by reading W; oneDNN leaves bandwidth unused there.
  if (m <= kSkinnyMaxRows && SkinnyGemmAvailable()) {
    SkinnyMatMulTransposedB(a, lda, w, ldw, c, ldc, m, n, k, accumulate);
    return;
  }
  Gemm(/*transposed_b=*/true, a, lda, w, ldw, c, ldc, m, n, k, accumulate);
}

void MatMul(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
            int64_t m, int64_t n, int64_t k, bool accumulate) {
  Gemm(/*transposed_b=*/false, a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

}  // namespace ropewire::kernels::cpu
