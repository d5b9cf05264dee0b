// A request's sequence as the scheduler tracks it through its lifecycle:
//
//   kWaiting ──admit──▶ kRunning ──stop / length / abort / deadline / error──▶ kFinished
//      ▲                   │
//      └──── kPreempted ◀──┘  (blocks released; recomputed from its tokens when readmitted)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/sampler.h"

namespace ropewire::scheduler {

using Clock = std::chrono::steady_clock;

enum class SequenceState { kWaiting, kRunning, kPreempted, kFinished };

enum class FinishReason {
  kNone,
  kStopToken,   // an EOS or one of stop_token_ids was produced
  kStopString,  // the text matched a stop string (decided outside the scheduler)
  kLength,      // max_tokens reached, or the model's maximum length
  kCancelled,   // aborted by the client
  kDeadline,    // the request's deadline passed
  kError,       // the step failed
};

// What a client asks for, as the engine receives it.
struct GenerationRequest {
  std::string request_id;
  std::vector<int32_t> prompt;
  int max_tokens = 16;
  model::SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::optional<Clock::time_point> deadline;
};

struct Sequence {
  int64_t id = 0;       // engine-assigned, unique
  int64_t arrival = 0;  // submission order; waiting sequences are served in this order
  GenerationRequest request;
  uint64_t seed = 0;  // resolved sampling seed

  SequenceState state = SequenceState::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;

  std::vector<int32_t> output;  // generated tokens
  std::vector<int32_t> blocks;  // block table: cache index i lives in blocks[i / block_size]
  int32_t position_offset = 0;  // position of cache index 0
  int num_computed = 0;         // tokens whose K/V are in the cache
  int64_t admitted = -1;        // admission order among running sequences (for preemption)
  int num_preemptions = 0;
  int num_cached_prompt_tokens = 0;  // prompt tokens served by the prefix cache (last admission)
  // Chained hash of every full block of the token list (prompt then output), for prefix caching.
  std::vector<uint64_t> block_hashes;
  int num_registered_blocks = 0;  // leading blocks already offered to the prefix cache
  // Context shift: tokens removed from the cache after the first sink_tokens. Positions are
  // position_offset + cache index, so the window after the sinks moves down by the same
  // amount without any cached key or value being rewritten.
  int sink_tokens = 0;
  int dropped_tokens = 0;
  int num_shifts = 0;
  // Rotary-table key (SchedulerConfig::rope_table_key) the cached K/V were computed with.
  int64_t cache_rope_key = 0;

  int NumTokens() const { return static_cast<int>(request.prompt.size() + output.size()); }
  int32_t TokenAt(int i) const {
    const int p = static_cast<int>(request.prompt.size());
    return i < p ? request.prompt[i] : output[i - p];
  }
  // The tokens the KV cache holds (or will hold): all of them, unless a context shift dropped
  // the ones after the first `sink_tokens` (attention sinks) to make room.
  int CacheLength() const { return NumTokens() - dropped_tokens; }
  int32_t CacheTokenAt(int c) const { return TokenAt(c < sink_tokens ? c : c + dropped_tokens); }
  // Tokens still to be fed to the model before the next sample.
  int NumUncomputed() const { return CacheLength() - num_computed; }
};

}  // namespace ropewire::scheduler
