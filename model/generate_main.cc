// ropewire-generate: greedy generation from token ids on the CPU, for checking a model
// directory without the service.
//
//   ropewire-generate --model DIR --prompt-token-ids 1,2,3 --max-tokens N
// prints the generated ids as a JSON array. With --logits it prints
//   {"token_ids": [...], "logits": [...]}
// where logits are those of the last position fed to the model (the prompt's last token when
// --max-tokens 0). --info prints the resolved configuration instead.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "model/greedy.h"
#include "model/model_info.h"
#include "model/model_runner.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "", "Hugging Face model directory (config.json + *.safetensors)");
ABSL_FLAG(std::string, prompt_token_ids, "", "comma-separated prompt token ids");
ABSL_FLAG(int, max_tokens, 16, "number of tokens to generate");
ABSL_FLAG(bool, logits, false, "also print the logits of the last position fed to the model");
ABSL_FLAG(bool, ignore_eos, false, "keep generating after an EOS token");
ABSL_FLAG(int, prefill_chunk, 0, "prompt tokens per step (0: whole prompt in one step)");
ABSL_FLAG(int, threads, 0, "CPU threads (0: one per core)");
ABSL_FLAG(int, block_size, 16, "KV cache block size in tokens");
ABSL_FLAG(bool, info, false, "print the resolved model configuration as JSON and exit");

namespace {

int Fail(const std::string& message) {
  std::cerr << "ropewire-generate: " << message << "\n";
  return 1;
}

bool ParseIds(const std::string& text, std::vector<int32_t>* ids) {
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) return false;
    ids->push_back(id);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "greedy generation: --model DIR --prompt-token-ids 1,2,3 --max-tokens N [--logits]");
  absl::ParseCommandLine(argc, argv);
  namespace rm = ropewire::model;
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) return Fail("--model is required");

  if (absl::GetFlag(FLAGS_info)) {
    auto config = rm::LoadModelConfig(dir);
    if (!config.ok()) return Fail(std::string(config.status().message()));
    std::cout << rm::ModelInfoJson(*config).dump(2) << "\n";
    return 0;
  }
  std::vector<int32_t> prompt;
  if (!ParseIds(absl::GetFlag(FLAGS_prompt_token_ids), &prompt) || prompt.empty()) {
    return Fail("--prompt-token-ids must be a non-empty comma-separated list of integers");
  }
  rm::RunnerOptions options;
  options.block_size = absl::GetFlag(FLAGS_block_size);
  options.num_threads = absl::GetFlag(FLAGS_threads);
  const int max_tokens = absl::GetFlag(FLAGS_max_tokens);
  // One sequence: size the cache to exactly what it needs.
  options.num_blocks = static_cast<int>((prompt.size() + std::max(max_tokens, 0) +
                                         options.block_size - 1) / std::max(options.block_size, 1));
  auto runner = rm::ModelRunner::Load(dir, options);
  if (!runner.ok()) return Fail(std::string(runner.status().message()));

  rm::GreedyOptions greedy;
  greedy.max_tokens = max_tokens;
  greedy.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  greedy.stop_at_eos = !absl::GetFlag(FLAGS_ignore_eos);
  auto result = rm::GenerateGreedy(**runner, prompt, greedy);
  if (!result.ok()) return Fail(std::string(result.status().message()));

  nlohmann::json ids = result->tokens;
  if (absl::GetFlag(FLAGS_logits)) {
    nlohmann::json out;
    out["token_ids"] = ids;
    out["logits"] = result->last_logits;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << ids.dump() << "\n";
  }
  return 0;
}
