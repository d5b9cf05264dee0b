// ModelInfo message from the loaded model and the engine's cache.
#pragma once

#include <string>

#include "ropewire/v1/inference.pb.h"
#include "scheduler/engine.h"

namespace ropewire::server {

void FillModelInfo(const scheduler::Engine& engine, bool has_tokenizer, const std::string& device,
                   const std::string& model_path, v1::ModelInfo* info);

}  // namespace ropewire::server
