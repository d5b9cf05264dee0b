#include "model/executor.h"

#include "absl/strings/str_cat.h"

#ifdef ROPEWIRE_HAVE_CUDA
#include "model/cuda/cuda_runner.h"
#endif

namespace ropewire::model {

bool BuiltWithCuda() {
#ifdef ROPEWIRE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

absl::StatusOr<std::unique_ptr<StepExecutor>> LoadExecutor(const std::string& model_dir,
                                                           const RunnerOptions& options) {
  if (options.device == "cpu") {
    auto runner = ModelRunner::Load(model_dir, options);
    if (!runner.ok()) return runner.status();
    return std::unique_ptr<StepExecutor>(std::move(*runner));
  }
  if (options.device == "cuda") {
#ifdef ROPEWIRE_HAVE_CUDA
    auto runner = CudaModelRunner::Load(model_dir, options);
    if (!runner.ok()) return runner.status();
    return std::unique_ptr<StepExecutor>(std::move(*runner));
#else
    return absl::FailedPreconditionError(
        "device cuda: this build has no CUDA backend (no CUDA compiler was found when it was "
        "configured)");
#endif
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device \"", options.device, "\" (expected cpu or cuda)"));
}

}  // namespace ropewire::model
