// Loading a model onto the device a user asked for: the CPU ModelRunner, or the CUDA runner
// (model/cuda/) in builds that have the CUDA backend.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/model_runner.h"

namespace ropewire::model {

// Whether this build has the CUDA backend (it was compiled with a CUDA compiler present).
bool BuiltWithCuda();

// RunnerOptions::device picks the executor: "cpu" or "cuda". Errors: an unknown device, "cuda"
// in a build without the backend or on a machine without a GPU (FAILED_PRECONDITION), and
// everything loading the model can fail with.
absl::StatusOr<std::unique_ptr<StepExecutor>> LoadExecutor(const std::string& model_dir,
                                                           const RunnerOptions& options);

}  // namespace ropewire::model
