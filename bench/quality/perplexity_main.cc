// ropewire-perplexity: perplexity of a model on a text file, windowed like llama.cpp's
// `perplexity` tool (model/perplexity.h), in any weight and KV-cache format, so that formats can
// be compared on the same text:
//
//   ropewire-perplexity --model DIR --text FILE [--context 512] [--quantization int8] [--json]
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "base/cli_flags.h"
#include "model/executor.h"
#include "model/perplexity.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer_config.h"

namespace {

struct Options {
  std::string model;
  std::string text;
  int context = 512;
  int max_windows = 0;
  bool bos = true;
  std::string weight_dtype = "auto";
  std::string quantization = "none";
  std::string kv_cache_dtype = "auto";
  int threads = 0;
  bool json = false;
};

int Fail(const std::string& message) {
  std::cerr << "ropewire-perplexity: " << message << "\n";
  return 1;
}

void Register(ropewire::base::CliFlags& f, Options& o) {
  f.Add("model", &o.model, "Hugging Face model directory (config.json, *.safetensors, tokenizer)");
  f.Add("text", &o.text, "UTF-8 text file to score");
  f.Add("context", &o.context, "tokens per window; the second half of each window is scored");
  f.Add("max-windows", &o.max_windows, "score at most this many windows (0: all)");
  f.Add("bos", &o.bos, "replace each window's first token with the model's BOS token");
  f.Add("weight-dtype", &o.weight_dtype, "auto (as stored), f32, bf16, f16");
  f.Add("quantization", &o.quantization, "none, int8 (Q8_0), int4 (Q4_0), q4_1");
  f.Add("kv-cache-dtype", &o.kv_cache_dtype, "auto, f32, bf16, f16");
  f.Add("threads", &o.threads, "CPU threads (0: one per core)");
  f.Add("json", &o.json, "print the result as one JSON object");
}

}  // namespace

int main(int argc, char** argv) {
  namespace rm = ropewire::model;
  Options o;
  ropewire::base::CliFlags flags("usage: ropewire-perplexity --model DIR --text FILE [options]");
  Register(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(std::string(s.message()));
  if (flags.help_requested()) {
    std::cout << flags.Help();
    return 0;
  }
  if (o.model.empty() || o.text.empty()) return Fail("--model and --text are required");
  std::ifstream in(o.text, std::ios::binary);
  if (!in) return Fail("cannot read --text " + o.text);
  std::stringstream text;
  text << in.rdbuf();

  auto tokenizer = ropewire::tokenizer::LoadModelTokenizer(o.model);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  auto tokens = tokenizer->tokenizer->Encode(text.str(), /*add_special_tokens=*/false);
  if (!tokens.ok()) return Fail(std::string(tokens.status().message()));

  rm::ExecutorOptions options;
  options.num_threads = o.threads;
  options.weight_dtype = o.weight_dtype;
  options.quantization = o.quantization;
  options.kv_cache_dtype = o.kv_cache_dtype;
  options.max_num_batched_tokens = o.context;
  options.num_blocks = (o.context + options.block_size - 1) / options.block_size;
  auto executor = rm::LoadExecutor(o.model, options);
  if (!executor.ok()) return Fail(std::string(executor.status().message()));

  rm::PerplexityOptions perplexity;
  perplexity.context = o.context;
  perplexity.max_windows = o.max_windows;
  const auto& bos = (*executor)->config().bos_token_ids;
  if (o.bos && !bos.empty()) perplexity.bos_token_id = bos.front();
  auto result = rm::ComputePerplexity(**executor, *tokens, perplexity);
  if (!result.ok()) return Fail(std::string(result.status().message()));

  const nlohmann::json out = {{"perplexity", result->perplexity},
                              {"mean_nll", result->mean_nll},
                              {"scored_tokens", result->scored_tokens},
                              {"windows", result->windows},
                              {"context", o.context},
                              {"weight_dtype", o.weight_dtype},
                              {"quantization", o.quantization},
                              {"kv_cache_dtype", o.kv_cache_dtype}};
  if (o.json) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "perplexity " << result->perplexity << " over " << result->scored_tokens
              << " tokens in " << result->windows << " windows of " << o.context << "\n";
  }
  return 0;
}
