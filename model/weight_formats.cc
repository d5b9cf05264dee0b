#include "model/weight_formats.h"

#include "absl/strings/str_cat.h"

namespace ropewire::model {

using kernels::WeightFormat;

absl::StatusOr<WeightFormatPolicy> WeightFormatPolicy::Create(const WeightFormatOptions& options) {
  WeightFormatPolicy policy;
  const std::string& dtype = options.weight_dtype;
  if (dtype == "f32") {
    policy.dense_ = WeightFormat::kF32;
  } else if (dtype == "bf16") {
    policy.dense_ = WeightFormat::kBF16;
  } else if (dtype == "f16") {
    policy.dense_ = WeightFormat::kF16;
  } else if (dtype != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--weight-dtype: \"", dtype, "\" is not one of auto, f32, bf16, f16"));
  }
  policy.keep_stored_ = dtype == "auto";
  const std::string& q = options.quantization;
  if (q == "int8" || q == "q8_0") {
    policy.projections_ = WeightFormat::kQ8_0;
  } else if (q == "int4" || q == "q4_0") {
    policy.projections_ = WeightFormat::kQ4_0;
  } else if (q == "q4_1") {
    policy.projections_ = WeightFormat::kQ4_1;
  } else if (q != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--quantization: \"", q, "\" is not one of none, int8, int4, q8_0, q4_0, q4_1"));
  }
  policy.quantized_ = q != "none";
  return policy;
}

WeightFormat WeightFormatPolicy::For(WeightRole role, DType stored) const {
  if (quantized_) return role == WeightRole::kProjection ? projections_ : WeightFormat::kQ8_0;
  if (!keep_stored_) return dense_;
  switch (stored) {
    case DType::kF16: return WeightFormat::kF16;
    case DType::kBF16: return WeightFormat::kBF16;
    default: return WeightFormat::kF32;  // f32, or a dtype the loader then refuses by name
  }
}

WeightFormat WeightFormatPolicy::ForStoredFormat(WeightRole role, WeightFormat stored) const {
  if (quantized_) return role == WeightRole::kProjection ? projections_ : WeightFormat::kQ8_0;
  return keep_stored_ ? stored : dense_;
}

std::string WeightFormatPolicy::Describe() const {
  if (quantized_) {
    return absl::StrCat(kernels::WeightFormatName(projections_), " (embeddings and LM head q8_0)");
  }
  return keep_stored_ ? "as stored" : kernels::WeightFormatName(dense_);
}

}  // namespace ropewire::model
