#include "client/request_flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ropewire::client {
namespace {

absl::Status ParseFloatFlag(const std::string& text, const std::string& flag, float* out) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": not a number: \"", text, "\""));
  }
  *out = static_cast<float>(value);
  return absl::OkStatus();
}

}  // namespace

void RegisterSamplingFlags(base::CliFlags& flags, SamplingFlags* s,
                           bool per_request_length_and_seed) {
  if (per_request_length_and_seed) {
    flags.Add("max-tokens", &s->max_tokens, "tokens to generate at most (0: the server default)");
    flags.Add("seed", &s->seed, "sampling seed; same seed, same tokens (unset: random)");
  }
  flags.Add("temperature", &s->temperature,
            "sampling temperature, 0 = greedy (unset: server default 1)");
  flags.Add("top-k", &s->top_k, "keep the k most likely tokens (unset: off)");
  flags.Add("top-p", &s->top_p, "nucleus sampling threshold in (0, 1] (unset: 1)");
  flags.Add("min-p", &s->min_p, "drop tokens below min_p x the top probability (unset: 0)");
  flags.Add("repetition-penalty", &s->repetition_penalty,
            "> 0; above 1 discourages repeats (unset: 1)");
  flags.Add("presence-penalty", &s->presence_penalty, "in [-2, 2] (unset: 0)");
  flags.Add("frequency-penalty", &s->frequency_penalty, "in [-2, 2] (unset: 0)");
  flags.Add("stop", &s->stop_help_placeholder, "stop string; repeat the flag for several");
  flags.Add("stop-token-ids", &s->stop_token_ids, "comma-separated token ids that end generation");
  flags.Add("ignore-eos", &s->ignore_eos, "keep generating after the end-of-sequence token");
  flags.Add("logprobs", &s->logprobs,
            "return log-probabilities with this many alternatives (0-20)");
}

absl::Status ApplySamplingFlags(const SamplingFlags& s, v1::GenerateRequest* request) {
  if (s.max_tokens < 0) return absl::InvalidArgumentError("--max-tokens must be >= 0");
  if (s.logprobs < 0) return absl::InvalidArgumentError("--logprobs must be >= 0");
  request->set_max_tokens(static_cast<uint32_t>(s.max_tokens));
  using Setter = void (*)(v1::GenerateRequest*, float);
  struct FloatFlag {
    const std::string* text;
    const char* name;
    Setter set;
  };
  const FloatFlag floats[] = {
      {&s.temperature, "temperature",
       [](v1::GenerateRequest* r, float v) { r->set_temperature(v); }},
      {&s.top_p, "top-p", [](v1::GenerateRequest* r, float v) { r->set_top_p(v); }},
      {&s.min_p, "min-p", [](v1::GenerateRequest* r, float v) { r->set_min_p(v); }},
      {&s.repetition_penalty, "repetition-penalty",
       [](v1::GenerateRequest* r, float v) { r->set_repetition_penalty(v); }},
      {&s.presence_penalty, "presence-penalty",
       [](v1::GenerateRequest* r, float v) { r->set_presence_penalty(v); }},
      {&s.frequency_penalty, "frequency-penalty",
       [](v1::GenerateRequest* r, float v) { r->set_frequency_penalty(v); }},
  };
  for (const FloatFlag& flag : floats) {
    if (flag.text->empty()) continue;
    float value = 0;
    if (absl::Status st = ParseFloatFlag(*flag.text, flag.name, &value); !st.ok()) return st;
    flag.set(request, value);
  }
  if (!s.top_k.empty()) {
    int top_k = 0;
    if (!absl::SimpleAtoi(s.top_k, &top_k))
      return absl::InvalidArgumentError("--top-k: not an integer: \"" + s.top_k + "\"");
    request->set_top_k(top_k);
  }
  if (!s.seed.empty()) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(s.seed, &seed))
      return absl::InvalidArgumentError("--seed: not an unsigned integer: \"" + s.seed + "\"");
    request->set_seed(seed);
  }
  for (const std::string& stop : s.stop) request->add_stop(stop);
  if (!s.stop_token_ids.empty()) {
    auto ids = ParseTokenIds(s.stop_token_ids, "stop-token-ids");
    if (!ids.ok()) return ids.status();
    for (int32_t id : *ids) request->add_stop_token_ids(id);
  }
  request->set_ignore_eos(s.ignore_eos);
  request->set_logprobs(static_cast<uint32_t>(s.logprobs));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> ParseTokenIds(const std::string& text,
                                                   const std::string& flag_name) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag_name, ": not a token id: \"", part, "\""));
    }
    ids.push_back(id);
  }
  if (ids.empty())
    return absl::InvalidArgumentError(absl::StrCat("--", flag_name, ": no token ids given"));
  return ids;
}

absl::StatusOr<std::vector<std::string>> ExtractRepeatedFlag(const std::string& name,
                                                             std::vector<std::string>* args) {
  std::vector<std::string> values;
  std::vector<std::string> kept;
  const std::string bare = "--" + name;
  const std::string with_value = bare + "=";
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string& word = (*args)[i];
    if (word == bare) {
      if (i + 1 >= args->size()) return absl::InvalidArgumentError(bare + " needs a value");
      values.push_back((*args)[++i]);
    } else if (word.rfind(with_value, 0) == 0) {
      values.push_back(word.substr(with_value.size()));
    } else {
      kept.push_back(word);
    }
  }
  *args = std::move(kept);
  return values;
}

}  // namespace ropewire::client
