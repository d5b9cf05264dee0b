// Seeded serving workloads: Poisson arrivals, prompt lengths uniform in a range, output lengths
// drawn from an exponential distribution and capped, optionally a prompt prefix shared by all.
#pragma once

#include <cstdint>
#include <vector>

#include "scheduler/sequence.h"

namespace ropewire::bench {

struct WorkloadSpec {
  int num_requests = 128;
  double rate = 0;  // requests per second; 0 = all at once (saturation)
  int min_prompt = 32, max_prompt = 256;
  double mean_output = 64;  // exponential mean, capped at max_output
  int max_output = 256;
  int shared_prefix = 0;  // tokens every prompt starts with
  int64_t vocab_size = 32000;
  uint64_t seed = 1;
};

struct TimedRequest {
  double arrival_seconds = 0;  // offset from the start of the run
  scheduler::GenerationRequest request;
};

std::vector<TimedRequest> MakeWorkload(const WorkloadSpec& spec);

}  // namespace ropewire::bench
