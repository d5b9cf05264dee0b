// The positional-encoding descriptor kernels receive. model/ builds it from config.json
// (DESIGN.md decision 2); kernels never see the JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ropewire::kernels {

// How positions enter the model.
enum class PositionKind {
  kNone,          // no positional term (NoPE)
  kRope,          // rotary, applied to q and k inside attention
  kAlibi,         // linear bias on the attention scores
  kRelativeBias,  // T5 bucketed bias table on the attention scores
  kLearned,       // learned absolute table added to the embeddings (GPT-2, OPT)
  kSinusoidal,    // fixed sinusoidal table added to the embeddings (XGLM)
};

// Which channels of a head form a rotated pair.
enum class RopeLayout {
  kNeox,         // pair k is (x[k], x[k + R/2]) ("rotate_half")
  kInterleaved,  // pair k is (x[2k], x[2k + 1]) (GPT-J)
};

// How a RoPE table depends on the length of the sequence it serves. A sequence's length is
// position_offset + kv_len after the step, i.e. its largest position + 1.
enum class RopeLengthRule {
  kStatic,      // one table for every length
  kDynamicNtk,  // base rescaled from the sequence's own length once it exceeds dynamic_base_length
  kLongRope,    // long_inv_freq once the length exceeds long_threshold, inv_freq before
};

struct RopeSpec {
  // R: the leading R channels of every head are rotated; the rest pass through.
  int rotary_dim = 0;
  RopeLayout layout = RopeLayout::kNeox;
  // R/2 inverse frequencies with every static scaling already applied, computed in fp32 exactly
  // as the reference implementation does. For kDynamicNtk these are the unscaled ones (lengths up
  // to dynamic_base_length); for kLongRope the short ones.
  std::vector<float> inv_freq;
  // Multiplies both cos and sin (YaRN / LongRoPE "attention factor"); 1 for most types.
  float attention_scaling = 1.0f;

  RopeLengthRule length_rule = RopeLengthRule::kStatic;
  // kDynamicNtk: theta' = theta * (factor * L / base_length - (factor - 1))^(R / (R - 2)).
  double theta = 10000.0;
  double dynamic_factor = 1.0;
  int64_t dynamic_base_length = 0;  // max_position_embeddings
  // kLongRope.
  std::vector<float> long_inv_freq;
  int64_t long_threshold = 0;  // original_max_position_embeddings
};

// ALiBi: score(h, i, j) += slope[h] * (j - i) for key position j and query position i (softmax
// makes this equal to the m*j and m*(j - (L-1)) forms of BLOOM and MPT).
struct AlibiSpec {
  // One per query head. Relative form: score += slope * (j - i). bf16 form: slopes are bf16
  // values and score += bf16(slope * j) * bias_scale.
  std::vector<float> slopes;
  // Falcon's reference rounds slope and slope * key_position to bfloat16 and adds
  // bf16(bf16(slope) * j) * bias_scale; this form reproduces it (bias_scale 1/sqrt(head_dim)).
  bool bf16_key_position_form = false;
  float bias_scale = 1.0f;
};

// T5 relative attention bias: score(h, i, j) += table[bucket(j - i)][h].
struct RelativeBiasSpec {
  int num_buckets = 32;
  int max_distance = 128;
  bool bidirectional = false;
  std::vector<float> table;  // [num_buckets][num_heads]
  int num_heads = 0;
};

// Absolute encodings added to the token embeddings at position p: row p + offset of a table of
// table_rows rows (learned weights, or sinusoids built by the model).
struct AbsoluteSpec {
  int64_t table_rows = 0;
  int offset = 0;        // OPT and XGLM: 2
  int padding_idx = -1;  // sinusoidal: row zeroed by the reference (never a real position)
};

struct PositionEncoding {
  PositionKind kind = PositionKind::kNone;
  // Scaling type as named in config.json ("default", "linear", ...); informational.
  std::string rope_type;
  RopeSpec rope;
  AlibiSpec alibi;
  RelativeBiasSpec relative_bias;
  AbsoluteSpec absolute;

  // Relative encodings depend only on (query position - key position), so a sequence may move
  // its position_offset (context shift) without touching its cache.
  bool IsRelative() const {
    return kind == PositionKind::kNone || kind == PositionKind::kRope ||
           kind == PositionKind::kAlibi || kind == PositionKind::kRelativeBias;
  }
};

// ALiBi slopes of the BLOOM / Falcon / paper form for `num_heads` heads (any count), in fp32 as
// the reference computes them: base^1..n for the largest power of two n <= num_heads, then every
// other slope of the 2n-head series.
std::vector<float> AlibiSlopes(int num_heads);

// MPT's builder: s_k = 1 / 2^(k * bias_max / N), N the next power of two; odd-indexed slopes
// first when N != num_heads. Equal to AlibiSlopes for bias_max 8.
std::vector<float> MptAlibiSlopes(int num_heads, double bias_max);

// T5's bucket of relative position `relative` (key - query), fp32 log branch as the reference.
int T5RelativePositionBucket(int64_t relative, bool bidirectional, int num_buckets,
                             int max_distance);

// x rounded to the nearest bfloat16 (ties to even), as a float.
float RoundToBfloat16(float x);

// XGLM / fairseq sinusoidal table [num_rows][dim]: sin of the first half, cos of the second,
// denominator half - 1, a zero column for odd dim and a zero row at padding_idx (< 0: none).
std::vector<float> SinusoidalPositionTable(int64_t num_rows, int dim, int padding_idx);

}  // namespace ropewire::kernels
