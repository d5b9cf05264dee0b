#include "kernels/cuda/gemm.h"

#include <climits>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ropewire::kernels::cuda {
namespace {

#define BLAS_RETURN_IF_ERROR(call)                                                               \
  do {                                                                                           \
    ::absl::Status ropewire_blas_status_ = ::ropewire::kernels::cuda::BlasStatus((call), #call); \
    if (!ropewire_blas_status_.ok()) return ropewire_blas_status_;                               \
  } while (0)

template <typename E>
constexpr cudaDataType_t kDataType = CUDA_R_32F;
template <>
constexpr cudaDataType_t kDataType<__nv_bfloat16> = CUDA_R_16BF;
template <>
constexpr cudaDataType_t kDataType<__half> = CUDA_R_16F;

absl::Status CheckGemmShape(int64_t lda, int64_t ldw, int64_t ldc, int64_t m, int64_t n,
                            int64_t k) {
  if (m < 0 || n < 0 || k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMulTransposedB: negative shape ", m, " x ", n, " x ", k));
  }
  if (k == 0 && m > 0 && n > 0) {
    // cuBLAS wants leading dimensions >= 1 and the decoder has no empty products.
    return absl::InvalidArgumentError("MatMulTransposedB: empty inner dimension");
  }
  if (lda < k || ldw < k || ldc < n) {
    return absl::InvalidArgumentError(absl::StrCat("MatMulTransposedB: leading dimensions ", lda,
                                                   ", ", ldw, ", ", ldc, " too small for ", m,
                                                   " x ", n, " x ", k));
  }
  for (int64_t v : {lda, ldw, ldc, m, n, k}) {
    if (v > INT_MAX) {
      return absl::InvalidArgumentError("MatMulTransposedB: a dimension exceeds cuBLAS's int32");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BlasStatus(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(call, " failed: ", cublasGetStatusName(status), ": ",
                                          cublasGetStatusString(status)));
}

absl::StatusOr<BlasHandle> BlasHandle::Create(cudaStream_t stream) {
  BlasHandle blas;
  BLAS_RETURN_IF_ERROR(cublasCreate(&blas.handle_));
  // Split-K partial sums stay f32 even when C is 16-bit: cuBLAS may otherwise reduce them in
  // the output type, which costs accuracy on long inner dimensions (MLP down, vocab heads).
  BLAS_RETURN_IF_ERROR(cublasSetMathMode(
      blas.handle_, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                              CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  auto workspace = DeviceBuffer::Allocate(kWorkspaceBytes);
  if (!workspace.ok()) return workspace.status();
  blas.workspace_ = std::move(*workspace);
  absl::Status bound = blas.SetStream(stream);
  if (!bound.ok()) return bound;
  return blas;
}

BlasHandle::BlasHandle(BlasHandle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      stream_(std::exchange(other.stream_, nullptr)),
      workspace_(std::move(other.workspace_)) {}

BlasHandle& BlasHandle::operator=(BlasHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    handle_ = std::exchange(other.handle_, nullptr);
    stream_ = std::exchange(other.stream_, nullptr);
    workspace_ = std::move(other.workspace_);
  }
  return *this;
}

BlasHandle::~BlasHandle() { Reset(); }

void BlasHandle::Reset() {
  // The handle goes before its workspace (member order frees workspace_ after this).
  if (handle_ != nullptr) cublasDestroy(handle_);
  handle_ = nullptr;
}

absl::Status BlasHandle::SetStream(cudaStream_t stream) {
  BLAS_RETURN_IF_ERROR(cublasSetStream(handle_, stream));
  BLAS_RETURN_IF_ERROR(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()));
  stream_ = stream;
  return absl::OkStatus();
}

// Row-major C = A · Wᵀ is column-major Cᵀ = W · Aᵀ: the row-major weight [n, k] read
// column-major is Wᵀ (k × n), so op(W) = T gives n × k; row-major A [m, k] read column-major is
// Aᵀ (k × m), op = N. The column-major result is n × m with leading dimension ldc: row-major C.
template <typename T, typename Out>
absl::Status MatMulTransposedB(BlasHandle& blas, const T* a, int64_t lda, const T* w, int64_t ldw,
                               Out* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                               bool accumulate) {
  if (absl::Status s = CheckGemmShape(lda, ldw, ldc, m, n, k); !s.ok()) return s;
  if (m == 0 || n == 0) return absl::OkStatus();
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  BLAS_RETURN_IF_ERROR(
      cublasGemmEx(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                   static_cast<int>(k), &alpha, w, kDataType<T>, static_cast<int>(ldw), a,
                   kDataType<T>, static_cast<int>(lda), &beta, c, kDataType<Out>,
                   static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

template absl::Status MatMulTransposedB(BlasHandle&, const __nv_bfloat16*, int64_t,
                                        const __nv_bfloat16*, int64_t, __nv_bfloat16*, int64_t,
                                        int64_t, int64_t, int64_t, bool);
template absl::Status MatMulTransposedB(BlasHandle&, const __half*, int64_t, const __half*, int64_t,
                                        __half*, int64_t, int64_t, int64_t, int64_t, bool);
template absl::Status MatMulTransposedB(BlasHandle&, const __nv_bfloat16*, int64_t,
                                        const __nv_bfloat16*, int64_t, float*, int64_t, int64_t,
                                        int64_t, int64_t, bool);
template absl::Status MatMulTransposedB(BlasHandle&, const __half*, int64_t, const __half*, int64_t,
                                        float*, int64_t, int64_t, int64_t, int64_t, bool);

}  // namespace ropewire::kernels::cuda
