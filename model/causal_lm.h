// The interface every model family implements: one forward pass over a StepPlan.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/step_plan.h"

namespace ropewire::model {

class CausalLm {
 public:
  virtual ~CausalLm() = default;
  virtual const ModelConfig& config() const = 0;
  // Appends the plan's tokens to `cache` and writes the logits of plan.logits_rows, one row of
  // vocab_size floats each, to `logits`. The plan has been validated against the cache.
  virtual absl::Status Forward(const StepPlan& plan, KvCache& cache, float* logits) = 0;
};

// Loads config.json and the safetensors weights of a model directory.
absl::StatusOr<std::unique_ptr<CausalLm>> LoadCausalLm(const std::string& dir);

}  // namespace ropewire::model
