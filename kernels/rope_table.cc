#include "kernels/rope_table.h"

#include <algorithm>
#include <cmath>

namespace ropewire::kernels {
namespace {

// Dynamic NTK's base for a sequence of `length`, in the reference's fp32 tensor arithmetic:
// theta * (factor * L / Lmax - (factor - 1))^(R / (R - 2)) with L = max(length, Lmax).
float DynamicNtkBase(const RopeSpec& spec, int64_t length) {
  const int64_t l = std::max(length, spec.dynamic_base_length);
  const float factor = static_cast<float>(spec.dynamic_factor);
  float ratio = factor * static_cast<float>(l);
  ratio = ratio / static_cast<float>(spec.dynamic_base_length);
  ratio = ratio - static_cast<float>(spec.dynamic_factor - 1.0);
  const double r = spec.rotary_dim;
  const float exponent = static_cast<float>(r / (r - 2.0));
  return static_cast<float>(spec.theta) * std::pow(ratio, exponent);
}

RopeSpec StaticSpec(const RopeSpec& spec, std::vector<float> inv_freq) {
  RopeSpec out = spec;
  out.inv_freq = std::move(inv_freq);
  out.length_rule = RopeLengthRule::kStatic;
  out.long_inv_freq.clear();
  return out;
}

}  // namespace

std::vector<float> DefaultInverseFrequencies(double theta, int rotary_dim) {
  std::vector<float> inv_freq(rotary_dim / 2);
  const float base = static_cast<float>(theta);
  for (int k = 0; k < rotary_dim / 2; ++k) {
    const float exponent = static_cast<float>(2 * k) / static_cast<float>(rotary_dim);
    inv_freq[k] = 1.0f / std::pow(base, exponent);
  }
  return inv_freq;
}

std::vector<float> InverseFrequenciesForLength(const RopeSpec& spec, int64_t length) {
  switch (spec.length_rule) {
    case RopeLengthRule::kStatic: return spec.inv_freq;
    case RopeLengthRule::kDynamicNtk:
      if (length <= spec.dynamic_base_length) return spec.inv_freq;
      return DefaultInverseFrequencies(DynamicNtkBase(spec, length), spec.rotary_dim);
    case RopeLengthRule::kLongRope:
      return length > spec.long_threshold ? spec.long_inv_freq : spec.inv_freq;
  }
  return spec.inv_freq;
}

int64_t RopeTableKey(const RopeSpec& spec, int64_t length) {
  switch (spec.length_rule) {
    case RopeLengthRule::kStatic: return 0;
    case RopeLengthRule::kDynamicNtk: return std::max(length, spec.dynamic_base_length);
    case RopeLengthRule::kLongRope: return length > spec.long_threshold ? 1 : 0;
  }
  return 0;
}

RopeTable::RopeTable(const RopeSpec& spec) : spec_(spec), half_dim_(spec.rotary_dim / 2) {}

void RopeTable::EnsureCapacity(int64_t num_positions, bool exact) {
  if (num_positions <= capacity_) return;
  int64_t new_capacity = num_positions;
  if (!exact) {
    // Grow geometrically so a long generation does not rebuild the table every step.
    new_capacity = capacity_ == 0 ? 256 : capacity_;
    while (new_capacity < num_positions) new_capacity *= 2;
  }
  cos_.resize(new_capacity * half_dim_);
  sin_.resize(new_capacity * half_dim_);
  const float scaling = spec_.attention_scaling;
  for (int64_t p = capacity_; p < new_capacity; ++p) {
    const float position = static_cast<float>(p);
    for (int k = 0; k < half_dim_; ++k) {
      const float angle = position * spec_.inv_freq[k];
      cos_[p * half_dim_ + k] = std::cos(angle) * scaling;
      sin_[p * half_dim_ + k] = std::sin(angle) * scaling;
    }
  }
  capacity_ = new_capacity;
}

RopeTableSet::RopeTableSet(const RopeSpec& spec)
    : spec_(spec), base_(StaticSpec(spec, spec.inv_freq)) {
  if (spec.length_rule == RopeLengthRule::kLongRope) {
    long_ = std::make_unique<RopeTable>(StaticSpec(spec, spec.long_inv_freq));
  }
}

RopeTable* RopeTableSet::TableFor(int64_t length) {
  switch (spec_.length_rule) {
    case RopeLengthRule::kStatic: return &base_;
    case RopeLengthRule::kLongRope: return length > spec_.long_threshold ? long_.get() : &base_;
    case RopeLengthRule::kDynamicNtk: {
      if (length <= spec_.dynamic_base_length) return &base_;
      auto& table = by_length_[length];
      if (!table) {
        table = std::make_unique<RopeTable>(
            StaticSpec(spec_, InverseFrequenciesForLength(spec_, length)));
      }
      return table.get();
    }
  }
  return &base_;
}

void RopeTableSet::Prepare(const RaggedBatchView& batch) {
  per_sequence_.assign(batch.num_seqs, nullptr);
  // Dynamic tables of earlier steps are dropped: a decoding sequence's length grows every step.
  std::map<int64_t, std::unique_ptr<RopeTable>> previous;
  previous.swap(by_length_);
  for (int s = 0; s < batch.num_seqs; ++s) {
    const int64_t length = int64_t(batch.position_offset[s]) + batch.kv_len[s];
    if (spec_.length_rule == RopeLengthRule::kDynamicNtk && length > spec_.dynamic_base_length) {
      auto reused = previous.find(length);
      if (reused != previous.end()) by_length_[length] = std::move(reused->second);
    }
    RopeTable* table = TableFor(length);
    const bool step_only = table != &base_ && table != long_.get();
    table->EnsureCapacity(length, /*exact=*/step_only);
    per_sequence_[s] = table;
  }
}

}  // namespace ropewire::kernels
