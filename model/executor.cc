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

// The CUDA executor stores weights and KV in --dtype; the CPU's storage options do not apply.
absl::Status CheckCpuOnlyOptions(const ExecutorOptions& options) {
  if (options.device != "cuda") return absl::OkStatus();
  if (options.quantization != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--quantization ", options.quantization,
        ": quantized weights run on the CPU only (--device cpu); the CUDA executor stores weights "
        "in --dtype"));
  }
  if (options.kv_cache_dtype != "auto") {
    return absl::InvalidArgumentError(
        "--kv-cache-dtype applies to --device cpu; the CUDA executor stores its KV cache in "
        "--dtype");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckStorageOptions(const ExecutorOptions& options) {
  RETURN_IF_ERROR(CheckCpuOnlyOptions(options));
  WeightFormatOptions formats;
  formats.weight_dtype = options.weight_dtype;
  formats.quantization = options.quantization;
  RETURN_IF_ERROR(WeightFormatPolicy::Create(formats).status());
  const std::string& kv = options.kv_cache_dtype;
  if (kv != "auto" && kv != "f32" && kv != "bf16" && kv != "f16") {
    return absl::InvalidArgumentError(
        absl::StrCat("--kv-cache-dtype: \"", kv, "\" is not one of auto, f32, bf16, f16"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StepExecutor>> CreateExecutor(ModelCheckpoint checkpoint,
                                                             const ExecutorOptions& options) {
  RETURN_IF_ERROR(CheckDevice(options.device));
  RETURN_IF_ERROR(CheckCpuOnlyOptions(options));
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
  // Refuse an unusable device or option before reading gigabytes of weights.
  RETURN_IF_ERROR(CheckDevice(options.device));
  RETURN_IF_ERROR(CheckStorageOptions(options));
  WeightFormatOptions formats;
  formats.weight_dtype = options.weight_dtype;
  formats.quantization = options.quantization;
  ASSIGN_OR_RETURN(ModelCheckpoint checkpoint, LoadCheckpoint(model_path, formats));
  return CreateExecutor(std::move(checkpoint), options);
}

}  // namespace ropewire::model
