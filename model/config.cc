#include "model/config.h"

namespace ropewire::model {

std::string PositionEncodingName(const kernels::PositionEncoding& position) {
  switch (position.kind) {
    case kernels::PositionKind::kNone: return "none";
    case kernels::PositionKind::kRope: return "rope/" + position.rope_type;
    case kernels::PositionKind::kAlibi: return "alibi";
    case kernels::PositionKind::kRelativeBias: return "relative_bias";
    case kernels::PositionKind::kLearned: return "learned";
    case kernels::PositionKind::kSinusoidal: return "sinusoidal";
  }
  return "unknown";
}

}  // namespace ropewire::model
