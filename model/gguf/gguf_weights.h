// A GGUF file → the ModelCheckpoint a Hugging Face directory gives (model/decoder_weights.h).
//
// Tensors of type F32, F16, BF16, Q8_0, Q4_0 and Q4_1 are ropewire's weight formats byte for
// byte (kernels/weight_format.h), so they are served in place: each matrix is a Weight over the
// memory-mapped file, which every such Weight keeps alive. Any other type (K-quants, IQ types,
// ...) is a load error naming the tensor and its type. --weight-dtype / --quantization asking
// for another format than stored convert that matrix at load, row by row.
//
// Q and K: llama.cpp's converter permutes their rows for the interleaved rotation
// (model/gguf/qk_permutation.h). The rows stay as stored and the model is served with the
// interleaved (GPT-J) RoPE layout: the same permutation of q and k within each head leaves every
// q·k unchanged, and V and the output projection are untouched.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model/decoder_weights.h"
#include "model/weight_formats.h"

namespace ropewire::model {

// Whether `path` names a GGUF model (a file, where a Hugging Face model is a directory).
bool IsGgufModelPath(const std::string& path);

// The ModelConfig of the GGUF model at `path` as it is served (RoPE layout included), without
// reading its weights.
absl::StatusOr<ModelConfig> LoadGgufModelConfig(const std::string& path);

// Config (from the metadata), weights and formats of the GGUF model at `path`. Errors name the
// file and what is wrong: malformed file, unsupported architecture, missing metadata or tensor,
// a tensor whose shape disagrees with the metadata, an unsupported tensor type.
absl::StatusOr<ModelCheckpoint> LoadGgufCheckpoint(const std::string& path,
                                                   const WeightFormatOptions& options = {});

}  // namespace ropewire::model
