// Loading a model onto the device a user asked for: its checkpoint read once on the host, then
// handed to the CPU executor (model/cpu/) or, in builds that have the CUDA backend, uploaded by
// the CUDA executor (model/cuda/).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/decoder_weights.h"
#include "model/step_executor.h"

namespace ropewire::model {

// ExecutorOptions::device picks the executor: "cpu" or "cuda". Errors: an unknown device, "cuda"
// in a build without the backend or on a machine without a GPU (FAILED_PRECONDITION), and
// everything loading the model can fail with.
absl::StatusOr<std::unique_ptr<StepExecutor>> LoadExecutor(const std::string& model_path,
                                                           const ExecutorOptions& options);

// Checks --weight-dtype, --quantization and --kv-cache-dtype (and that they suit the device)
// without reading the model: INVALID_ARGUMENT naming the flag and the accepted values.
absl::Status CheckStorageOptions(const ExecutorOptions& options);

// The same for a checkpoint already in memory.
absl::StatusOr<std::unique_ptr<StepExecutor>> CreateExecutor(ModelCheckpoint checkpoint,
                                                             const ExecutorOptions& options);

}  // namespace ropewire::model
