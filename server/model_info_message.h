// ModelInfo message from the loaded model and the engine's cache.
#pragma once

#include <string>

#include "ropewire/v1/inference.pb.h"
#include "scheduler/engine.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {

// `tokenizer` is null when the server runs without one.
void FillModelInfo(const scheduler::Engine& engine, const tokenizer::ModelTokenizer* tokenizer,
                   const std::string& device, const std::string& model_path, v1::ModelInfo* info);

}  // namespace ropewire::server
