#include "server/request_builder.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace ropewire::server {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status CheckFinite(const char* field, bool has, float value) {
  if (has && !std::isfinite(value)) return Invalid(field, "must be a finite number");
  return absl::OkStatus();
}

absl::Status FillSampling(const v1::GenerateRequest& m, model::SamplingParams* s) {
  for (auto [field, has, value] :
       {std::tuple{"temperature", m.has_temperature(), m.temperature()},
        {"top_p", m.has_top_p(), m.top_p()},
        {"min_p", m.has_min_p(), m.min_p()},
        {"repetition_penalty", m.has_repetition_penalty(), m.repetition_penalty()},
        {"presence_penalty", m.has_presence_penalty(), m.presence_penalty()},
        {"frequency_penalty", m.has_frequency_penalty(), m.frequency_penalty()}}) {
    if (absl::Status st = CheckFinite(field, has, value); !st.ok()) return st;
  }
  if (m.has_temperature()) s->temperature = m.temperature();
  if (m.has_top_k()) s->top_k = m.top_k();
  if (m.has_top_p()) s->top_p = m.top_p();
  if (m.has_min_p()) s->min_p = m.min_p();
  if (m.has_repetition_penalty()) s->repetition_penalty = m.repetition_penalty();
  if (m.has_presence_penalty()) s->presence_penalty = m.presence_penalty();
  if (m.has_frequency_penalty()) s->frequency_penalty = m.frequency_penalty();
  if (m.has_seed()) s->seed = m.seed();
  if (m.logprobs() > 20)
    return Invalid("logprobs", absl::StrCat("must be at most 20, got ", m.logprobs()));
  s->logprobs = static_cast<int>(m.logprobs());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BuiltRequest> BuildRequest(const v1::GenerateRequest& m,
                                          const tokenizer::ModelTokenizer* tokenizer,
                                          const RequestLimits& limits) {
  BuiltRequest built;
  scheduler::GenerationRequest& r = built.request;
  if (static_cast<int64_t>(m.request_id().size()) > limits.max_request_id_bytes) {
    return Invalid("request_id", absl::StrCat("at most ", limits.max_request_id_bytes,
                                              " bytes, got ", m.request_id().size()));
  }
  r.request_id = m.request_id();
  const bool has_text = !m.prompt().empty();
  const bool has_ids = m.prompt_token_ids_size() > 0;
  if (has_text == has_ids) {
    return Invalid("prompt", "exactly one of prompt and prompt_token_ids must be set");
  }
  if (has_text || m.stop_size() > 0) {
    if (tokenizer == nullptr || tokenizer->tokenizer == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          has_text ? "prompt" : "stop",
          ": the model is served without a tokenizer; send prompt_token_ids and stop_token_ids"));
    }
  }
  if (has_text && limits.max_prompt_bytes > 0 &&
      static_cast<int64_t>(m.prompt().size()) > limits.max_prompt_bytes) {
    return Invalid("prompt", absl::StrCat(m.prompt().size(),
                                          " bytes is more text than the model's maximum length "
                                          "can hold (at most ",
                                          limits.max_prompt_bytes, " bytes)"));
  }
  if (has_text) {
    const bool add_special = m.has_add_special_tokens() ? m.add_special_tokens() : true;
    auto ids = tokenizer->tokenizer->Encode(m.prompt(), add_special);
    if (!ids.ok()) return Invalid("prompt", std::string(ids.status().message()));
    if (ids->empty()) return Invalid("prompt", "encodes to no tokens");
    r.prompt = std::move(*ids);
  } else {
    r.prompt.assign(m.prompt_token_ids().begin(), m.prompt_token_ids().end());
  }
  r.max_tokens = m.max_tokens() == 0
                     ? limits.default_max_tokens
                     : static_cast<int>(std::min<uint32_t>(m.max_tokens(), 1u << 30));
  if (absl::Status st = FillSampling(m, &r.sampling); !st.ok()) return st;
  if (m.stop_size() > limits.max_stop_strings) {
    return Invalid("stop", absl::StrCat("at most ", limits.max_stop_strings, " stop strings, got ",
                                        m.stop_size()));
  }
  for (const std::string& stop : m.stop()) {
    if (stop.empty() || static_cast<int>(stop.size()) > limits.max_stop_string_bytes) {
      return Invalid("stop", absl::StrCat("each stop string must be 1 to ",
                                          limits.max_stop_string_bytes, " bytes"));
    }
    built.stop_strings.push_back(stop);
  }
  r.stop_token_ids.assign(m.stop_token_ids().begin(), m.stop_token_ids().end());
  r.ignore_eos = m.ignore_eos();
  built.skip_special_tokens = m.has_skip_special_tokens() ? m.skip_special_tokens() : true;
  return built;
}

}  // namespace ropewire::server
