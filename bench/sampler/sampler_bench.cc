// ropewire-bench-sampler: microseconds the sampler spends per row, by vocabulary size and
// sampling mode, on logits shaped like a language model's (a normal background of spread 2 and
// a few strong tokens). One thread; median of --repeats rounds of --rows rows each, in the
// thread's CPU time, so that a busy machine's waits for a core do not count.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "base/cli_flags.h"
#include "model/sampler.h"

namespace {

using ropewire::model::Sampler;
using ropewire::model::SamplingParams;

std::vector<float> Rows(int64_t vocab, int rows) {
  std::mt19937 rng(7);
  std::normal_distribution<float> background(0.0f, 2.0f);
  std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
  std::vector<float> logits(vocab * rows);
  for (float& v : logits) v = background(rng);
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < 20; ++i) logits[r * vocab + pick(rng)] += 8.0f + 0.5f * i;
  }
  return logits;
}

double ThreadMicroseconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

double MicrosecondsPerRow(int64_t vocab, const SamplingParams& params, int rows, int repeats) {
  const std::vector<float> logits = Rows(vocab, rows);
  Sampler sampler(vocab);
  std::vector<int32_t> prompt(200), output(100);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i * 37 % vocab);
  for (size_t i = 0; i < output.size(); ++i) output[i] = static_cast<int32_t>(i * 101 % vocab);
  std::vector<double> rounds;
  int64_t sink = 0;
  for (int rep = 0; rep < repeats; ++rep) {
    const double start = ThreadMicroseconds();
    for (int r = 0; r < rows; ++r)
      sink +=
          sampler.Sample(logits.data() + r * vocab, params, prompt, output, rep * rows + r).token;
    rounds.push_back((ThreadMicroseconds() - start) / rows);
  }
  std::sort(rounds.begin(), rounds.end());
  if (sink == -1) std::printf("unreachable\n");
  return rounds[rounds.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 64, repeats = 9;
  ropewire::base::CliFlags flags("usage: ropewire-bench-sampler [--rows N] [--repeats N]");
  flags.Add("rows", &rows, "distinct logit rows per round");
  flags.Add("repeats", &repeats, "rounds; the median is reported");
  if (auto s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (flags.help_requested()) {
    std::printf("%s", flags.Help().c_str());
    return 0;
  }
  struct Mode {
    const char* name;
    SamplingParams params;
  };
  std::vector<Mode> modes(7);
  modes[0] = {"greedy", {}};
  modes[0].params.temperature = 0;
  modes[1] = {"temperature 1 (default)", {}};
  modes[2] = {"top_p 0.9", {}};
  modes[2].params.top_p = 0.9f;
  modes[3] = {"top_k 50", {}};
  modes[3].params.top_k = 50;
  modes[4] = {"min_p 0.05", {}};
  modes[4].params.min_p = 0.05f;
  modes[5] = {"top_k 50 + top_p 0.9 + T 0.7", {}};
  modes[5].params.top_k = 50, modes[5].params.top_p = 0.9f, modes[5].params.temperature = 0.7f;
  modes[6] = {"top_p 0.9 + penalties", {}};
  modes[6].params.top_p = 0.9f, modes[6].params.repetition_penalty = 1.1f;
  modes[6].params.frequency_penalty = 0.2f;
  std::printf("%-30s %12s %12s\n", "mode", "32k µs/row", "128k µs/row");
  for (const Mode& m : modes) {
    std::printf("%-30s %12.1f %12.1f\n", m.name, MicrosecondsPerRow(32000, m.params, rows, repeats),
                MicrosecondsPerRow(128256, m.params, rows, repeats));
  }
  return 0;
}
