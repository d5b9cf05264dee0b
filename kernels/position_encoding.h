// The positional-encoding descriptor kernels receive. model/ builds it from config.json
// (DESIGN.md decision 2); kernels never see the JSON.
#pragma once

#include <string>
#include <vector>

namespace ropewire::kernels {

// How positions enter the model.
enum class PositionKind {
  kNone,  // no positional term (NoPE)
  kRope,  // rotary, applied to q and k inside attention
};

// Which channels of a head form a rotated pair.
enum class RopeLayout {
  kNeox,         // pair k is (x[k], x[k + R/2]) ("rotate_half")
  kInterleaved,  // pair k is (x[2k], x[2k + 1]) (GPT-J)
};

struct RopeSpec {
  // R: the leading R channels of every head are rotated; the rest pass through.
  int rotary_dim = 0;
  RopeLayout layout = RopeLayout::kNeox;
  // R/2 inverse frequencies with every static scaling already applied, computed in fp32 exactly
  // as the reference implementation does.
  std::vector<float> inv_freq;
  // Multiplies both cos and sin (YaRN / LongRoPE "attention factor"); 1 for most types.
  float attention_scaling = 1.0f;
};

struct PositionEncoding {
  PositionKind kind = PositionKind::kNone;
  // Scaling type as named in config.json ("default", "linear", ...); informational.
  std::string rope_type;
  RopeSpec rope;
};

}  // namespace ropewire::kernels
