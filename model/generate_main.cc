// ropewire-generate: greedy generation from token ids (on the CPU, or --device cuda), for
// checking a model without the service.
//
//   ropewire-generate --model DIR --prompt-token-ids 1,2,3 --max-tokens N
// prints the generated ids as a JSON array. With --logits it prints
//   {"token_ids": [...], "logits": [...]}
// where logits are those of the last position fed to the model (the prompt's last token when
// --max-tokens 0). --info prints the resolved configuration instead.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/cli_flags.h"
#include "model/config_json.h"
#include "model/executor.h"
#include "model/gguf/gguf_weights.h"
#include "model/greedy.h"
#include "model/model_info.h"
#include "nlohmann/json.hpp"

namespace {

struct Options {
  std::string model;
  std::string prompt_token_ids;
  int max_tokens = 16;
  bool logits = false;
  bool ignore_eos = false;
  int prefill_chunk = 0;
  int threads = 0;
  std::string device = "cpu";
  std::string dtype = "bf16";
  std::string weight_dtype = "auto";
  std::string quantization = "none";
  std::string kv_cache_dtype = "auto";
  int block_size = 16;
  bool info = false;
};

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

void Register(ropewire::base::CliFlags& flags, Options& o) {
  flags.Add("model", &o.model,
            "Hugging Face model directory (config.json + *.safetensors) or a GGUF file");
  flags.Add("prompt-token-ids", &o.prompt_token_ids, "comma-separated prompt token ids");
  flags.Add("max-tokens", &o.max_tokens, "number of tokens to generate");
  flags.Add("logits", &o.logits, "also print the logits of the last position fed to the model");
  flags.Add("ignore-eos", &o.ignore_eos, "keep generating after an EOS token");
  flags.Add("prefill-chunk", &o.prefill_chunk, "prompt tokens per step (0: whole prompt at once)");
  flags.Add("threads", &o.threads, "CPU threads (0: one per core)");
  flags.Add("device", &o.device, "cpu or cuda");
  flags.Add("dtype", &o.dtype, "cuda: bf16 or fp16 storage");
  flags.Add("weight-dtype", &o.weight_dtype, "cpu: auto (as stored), f32, bf16, f16");
  flags.Add("quantization", &o.quantization, "cpu: none, int8 (Q8_0), int4 (Q4_0), q4_1");
  flags.Add("kv-cache-dtype", &o.kv_cache_dtype, "cpu: auto, f32, bf16, f16");
  flags.Add("block-size", &o.block_size, "KV cache block size in tokens");
  flags.Add("info", &o.info, "print the resolved model configuration as JSON and exit");
}

int PrintInfo(const std::string& path) {
  auto config = ropewire::model::IsGgufModelPath(path) ? ropewire::model::LoadGgufModelConfig(path)
                                                       : ropewire::model::LoadModelConfig(path);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  std::cout << ropewire::model::ModelInfoJson(*config).dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  namespace rm = ropewire::model;
  Options o;
  ropewire::base::CliFlags flags(
      "usage: ropewire-generate --model DIR --prompt-token-ids 1,2,3 [--max-tokens N] [--logits]");
  Register(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(std::string(s.message()));
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (o.model.empty()) return Fail("--model is required");
  if (o.info) return PrintInfo(o.model);

  std::vector<int32_t> prompt;
  if (!ParseIds(o.prompt_token_ids, &prompt) || prompt.empty()) {
    return Fail("--prompt-token-ids must be a non-empty comma-separated list of integers");
  }
  if (o.max_tokens < 0) return Fail("--max-tokens must be >= 0");
  if (o.block_size <= 0) return Fail("--block-size must be positive");
  rm::ExecutorOptions options;
  options.block_size = o.block_size;
  options.num_threads = o.threads;
  // One sequence: size the cache to exactly what it needs.
  options.num_blocks =
      static_cast<int>((prompt.size() + o.max_tokens + o.block_size - 1) / o.block_size);
  options.device = o.device;
  options.dtype = o.dtype;
  options.weight_dtype = o.weight_dtype;
  options.quantization = o.quantization;
  options.kv_cache_dtype = o.kv_cache_dtype;
  auto executor = rm::LoadExecutor(o.model, options);
  if (!executor.ok()) return Fail(std::string(executor.status().message()));

  rm::GreedyOptions greedy;
  greedy.max_tokens = o.max_tokens;
  greedy.prefill_chunk = o.prefill_chunk;
  greedy.stop_at_eos = !o.ignore_eos;
  auto result = rm::GenerateGreedy(**executor, prompt, greedy);
  if (!result.ok()) return Fail(std::string(result.status().message()));

  nlohmann::json ids = result->tokens;
  if (o.logits) {
    std::cout << nlohmann::json{{"token_ids", ids}, {"logits", result->last_logits}}.dump() << "\n";
  } else {
    std::cout << ids.dump() << "\n";
  }
  return 0;
}
