// Host tables of cos/sin per position for a RoPE spec, built with the reference implementation's
// fp32 recipe: angle = fp32(p) * inv_freq[k] in fp32, then cos/sin, then × attention_scaling.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "kernels/paged_kv.h"
#include "kernels/position_encoding.h"

namespace ropewire::kernels {

// inv_freq[k] = 1 / theta^(2k / rotary_dim), in fp32 as the reference computes it.
std::vector<float> DefaultInverseFrequencies(double theta, int rotary_dim);

// The inverse frequencies a sequence of `length` tokens (its largest position + 1) rotates with:
// spec.inv_freq for static types; dynamic NTK's rescaled base beyond dynamic_base_length;
// LongRoPE's long factors beyond long_threshold.
std::vector<float> InverseFrequenciesForLength(const RopeSpec& spec, int64_t length);

// Identifies the table a sequence of `length` tokens rotates with: equal keys, equal tables.
// Static types: 0; LongRoPE: 0 up to long_threshold, 1 beyond; dynamic NTK: max(length, base).
// Keys never decrease with length. Cached K is un-rotated, but the K/V of layers after the first
// derive from attention outputs computed with the table of their step, so a sequence whose key
// changed since its cache was computed matches the reference's full forward again only after
// its tokens are recomputed (re-prefilled) in one pass with the new table.
int64_t RopeTableKey(const RopeSpec& spec, int64_t length);

class RopeTable {
 public:
  explicit RopeTable(const RopeSpec& spec);

  // Grows the table to cover positions [0, num_positions), geometrically unless `exact`. Not
  // thread-safe: the model calls it before launching attention for a step.
  void EnsureCapacity(int64_t num_positions, bool exact = false);

  int64_t capacity() const { return capacity_; }
  int half_dim() const { return half_dim_; }
  const RopeSpec& spec() const { return spec_; }
  // R/2 values for `position`; position must be < capacity().
  const float* Cos(int64_t position) const { return cos_.data() + position * half_dim_; }
  const float* Sin(int64_t position) const { return sin_.data() + position * half_dim_; }

 private:
  RopeSpec spec_;
  int half_dim_ = 0;
  int64_t capacity_ = 0;
  std::vector<float> cos_;
  std::vector<float> sin_;
};

// The tables of one model's RoPE across the sequences of a step. Static types share one cached
// table; LongRoPE keeps a cached short and long table and gives each sequence the one its own
// length selects; dynamic NTK uses the cached unscaled table up to the base length and, beyond
// it, a table built for the step per distinct sequence length (all of that sequence's keys and
// queries use the base of its current length, DESIGN.md decision 1).
class RopeTableSet {
 public:
  explicit RopeTableSet(const RopeSpec& spec);

  // Picks each sequence's table for the step and makes it cover the sequence's positions.
  void Prepare(const RaggedBatchView& batch);
  // [num_seqs] table per sequence, valid until the next Prepare.
  const RopeTable* const* per_sequence() const { return per_sequence_.data(); }

 private:
  RopeTable* TableFor(int64_t length);

  RopeSpec spec_;
  RopeTable base_;
  std::unique_ptr<RopeTable> long_;
  std::map<int64_t, std::unique_ptr<RopeTable>> by_length_;  // dynamic NTK, this step only
  std::vector<const RopeTable*> per_sequence_;
};

}  // namespace ropewire::kernels
