#include "bench/serving/workload.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace ropewire::bench {

std::vector<TimedRequest> MakeWorkload(const WorkloadSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(spec.vocab_size - 1));
  std::uniform_int_distribution<int> prompt_len(spec.min_prompt, spec.max_prompt);
  std::exponential_distribution<double> output_len(1.0 / spec.mean_output);
  std::exponential_distribution<double> gap(spec.rate > 0 ? spec.rate : 1.0);
  std::vector<int32_t> prefix(spec.shared_prefix);
  for (auto& t : prefix) t = token(rng);

  std::vector<TimedRequest> requests;
  double clock = 0;
  for (int i = 0; i < spec.num_requests; ++i) {
    TimedRequest timed;
    if (spec.rate > 0) clock += gap(rng);
    timed.arrival_seconds = clock;
    scheduler::GenerationRequest& r = timed.request;
    r.request_id = "bench-" + std::to_string(i);
    r.prompt = prefix;
    const int length = std::max(prompt_len(rng), spec.shared_prefix + 1);
    while (static_cast<int>(r.prompt.size()) < length) r.prompt.push_back(token(rng));
    r.max_tokens = std::clamp(static_cast<int>(std::ceil(output_len(rng))), 1, spec.max_output);
    r.ignore_eos = true;  // lengths are the workload's, not the random model's
    r.sampling.temperature = 0.0f;
    requests.push_back(std::move(timed));
  }
  return requests;
}

}  // namespace ropewire::bench
