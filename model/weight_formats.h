// Which storage format each of a checkpoint's matrices gets once loaded, from the user's
// --weight-dtype and --quantization (DESIGN.md decision 9: nothing is widened to f32 unless f32
// was asked for).
//
//   --weight-dtype auto   every matrix keeps the type it is stored in (f32, bf16, f16; a GGUF
//                         file's Q8_0 / Q4_0 / Q4_1 tensors too)
//                  f32 | bf16 | f16   every matrix in that type
//   --quantization int8 | q8_0   projections, embeddings and LM head in Q8_0
//                  int4 | q4_0   projections in Q4_0; embeddings and LM head in Q8_0
//                  q4_1          projections in Q4_1; embeddings and LM head in Q8_0
// The LM head stays at 8 bits under int4: its errors reach every logit directly. Norms, biases
// and absolute position tables are small and stay f32.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "kernels/weight_format.h"
#include "model/safetensors.h"

namespace ropewire::model {

struct WeightFormatOptions {
  std::string weight_dtype = "auto";  // auto | f32 | bf16 | f16
  std::string quantization = "none";  // none | int8 | int4 | q8_0 | q4_0 | q4_1
};

enum class WeightRole {
  kProjection,  // attention and MLP projections (and OPT's project_in / project_out)
  kEmbedding,   // the token embedding table (rows gathered, never streamed)
  kLmHead,      // the LM head, or the embedding table when the head is tied to it
};

class WeightFormatPolicy {
 public:
  // Errors name the flag and its accepted values.
  static absl::StatusOr<WeightFormatPolicy> Create(const WeightFormatOptions& options);

  // The format of a matrix playing `role`, stored as `stored` in the checkpoint.
  kernels::WeightFormat For(WeightRole role, DType stored) const;
  // The same for a matrix already stored in a weight format (a GGUF tensor): kept as it is
  // unless a flag asks for another format.
  kernels::WeightFormat ForStoredFormat(WeightRole role, kernels::WeightFormat stored) const;
  bool quantized() const { return quantized_; }
  // "auto", "bf16", "q4_0 (LM head q8_0)", ... for logs and model info.
  std::string Describe() const;

 private:
  bool keep_stored_ = true;  // --weight-dtype auto without quantization
  kernels::WeightFormat dense_ = kernels::WeightFormat::kF32;
  bool quantized_ = false;
  kernels::WeightFormat projections_ = kernels::WeightFormat::kF32;
};

}  // namespace ropewire::model
