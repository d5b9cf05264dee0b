#include "model/executor.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/cpu/cpu_executor.h"
#include "model/families/checkpoint_loader.h"

#ifdef ROPEWIRE_HAVE_CUDA
#include "model/cuda/cuda_executor.h"
#endif

namespace ropewire::model {
namespace {

absl::Status CheckDevice(const std::string& device) {
  if (device == "cpu") return absl::OkStatus();
  if (device == "cuda") {
#ifdef ROPEWIRE_HAVE_CUDA
    return cuda::CudaExecutor::CheckDeviceAvailable();
#else
    return absl::FailedPreconditionError(
        "device cuda: this build has no CUDA backend (no CUDA compiler was found when it was "
        "configured)");
#endif
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device \"", device, "\" (expected cpu or cuda)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StepExecutor>> CreateExecutor(ModelCheckpoint checkpoint,
                                                             const ExecutorOptions& options) {
  RETURN_IF_ERROR(CheckDevice(options.device));
#ifdef ROPEWIRE_HAVE_CUDA
  if (options.device == "cuda") {
    // The host copy of the weights is dropped once they are on the device.
    ASSIGN_OR_RETURN(auto executor, cuda::CudaExecutor::Create(checkpoint, options));
    return std::unique_ptr<StepExecutor>(std::move(executor));
  }
#endif
  ASSIGN_OR_RETURN(auto executor, cpu::CpuExecutor::Create(std::move(checkpoint), options));
  return std::unique_ptr<StepExecutor>(std::move(executor));
}

absl::StatusOr<std::unique_ptr<StepExecutor>> LoadExecutor(const std::string& model_path,
                                                           const ExecutorOptions& options) {
  // Refuse an unusable device before reading gigabytes of weights.
  RETURN_IF_ERROR(CheckDevice(options.device));
  ASSIGN_OR_RETURN(ModelCheckpoint checkpoint, LoadCheckpoint(model_path));
  return CreateExecutor(std::move(checkpoint), options);
}

}  // namespace ropewire::model
