// What the server needs to know about a model's special tokens, gathered from a Hugging Face
// model directory: tokenizer.json, tokenizer_config.json, generation_config.json, config.json
// and chat_template.jinja.
//
// Precedence (as generation in transformers resolves it):
//   EOS ids: generation_config.json eos_token_id (int or list), else config.json's; the
//            tokenizer_config.json eos_token is appended when not already listed.
//   BOS id:  generation_config.json bos_token_id, else config.json's, else the id of
//            tokenizer_config.json's bos_token.
//   add_bos_token / add_eos_token: tokenizer_config.json's flags when present, else whether the
//            tokenizer.json post-processor adds the BOS / EOS id.
//   chat_template: tokenizer_config.json's (a string, or the "default" entry of a list), else
//            chat_template.jinja, else chat_template.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/tokenizer.h"

namespace ropewire::tokenizer {

struct TokenizerConfig {
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // any of them ends generation; the first is the primary
  std::optional<int32_t> pad_token_id;
  bool add_bos_token = false;
  bool add_eos_token = false;
  std::optional<std::string> chat_template;
};

// Reads the JSON files of `model_dir` (all optional) and resolves token strings with
// `tokenizer`. Malformed files or tokens unknown to the tokenizer are errors naming the file.
absl::StatusOr<TokenizerConfig> LoadTokenizerConfig(const std::filesystem::path& model_dir,
                                                    const Tokenizer& tokenizer);

struct ModelTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  TokenizerConfig config;
};

// tokenizer.json (required) plus LoadTokenizerConfig.
absl::StatusOr<ModelTokenizer> LoadModelTokenizer(const std::filesystem::path& model_dir);

}  // namespace ropewire::tokenizer
