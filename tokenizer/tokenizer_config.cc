#include "tokenizer/tokenizer_config.h"

#include <fstream>
#include <sstream>

#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::optional<std::string>> ReadOptionalFile(const fs::path& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return std::optional<std::string>();
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(Concat(path.string(), ": cannot open file"));
  std::ostringstream contents;
  contents << file.rdbuf();
  return std::optional<std::string>(contents.str());
}

// The parsed file, or an empty object when the file does not exist.
absl::StatusOr<Json> ReadOptionalJson(const fs::path& path) {
  auto text = ReadOptionalFile(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return Json::object();
  Json json = Json::parse(**text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(Concat(path.string(), ": not a JSON object"));
  }
  return json;
}

// An id or list of ids under `key` (absent or null: empty list).
absl::StatusOr<std::vector<int32_t>> IdList(const Json& json, const char* key,
                                            const std::string& file, const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  const Json* value = OptionalMember(json, key);
  if (value == nullptr) return ids;
  const std::string where = Concat(file, ": ", key);
  std::vector<Json> items =
      value->is_array() ? value->get<std::vector<Json>>() : std::vector<Json>{*value};
  for (const Json& item : items) {
    if (!item.is_number_integer()) return JsonError(where, "expected an integer or a list");
    const int64_t id = item.get<int64_t>();
    if (id < 0 || id >= tokenizer.id_limit() || tokenizer.IdToToken(id) == nullptr) {
      return JsonError(where, Concat("id ", id, " is not in the tokenizer's vocabulary"));
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// A token given as a string or as an AddedToken object {"content": ...}, resolved to its id.
absl::StatusOr<std::optional<int32_t>> TokenId(const Json& json, const char* key,
                                               const std::string& file,
                                               const Tokenizer& tokenizer) {
  const Json* value = OptionalMember(json, key);
  if (value == nullptr) return std::optional<int32_t>();
  const std::string where = Concat(file, ": ", key);
  const Json* content = value->is_object() ? OptionalMember(*value, "content") : value;
  if (content == nullptr || !content->is_string()) {
    return JsonError(where, "expected a string or {\"content\": ...}");
  }
  const std::string text = content->get<std::string>();
  std::optional<int32_t> id = tokenizer.TokenToId(text);
  if (!id) return JsonError(where, Concat("'", text, "' is not a token of the tokenizer"));
  return id;
}

absl::StatusOr<std::optional<std::string>> ChatTemplate(const Json& tokenizer_config,
                                                        const fs::path& model_dir) {
  const std::string file = (model_dir / "tokenizer_config.json").string();
  if (const Json* value = OptionalMember(tokenizer_config, "chat_template")) {
    if (value->is_string()) return std::optional<std::string>(value->get<std::string>());
    if (!value->is_array() || value->empty()) {
      return JsonError(Concat(file, ": chat_template"), "expected a string or a list");
    }
    const Json* chosen = &(*value)[0];
    for (const Json& entry : *value) {
      if (entry.is_object() && entry.value("name", "") == "default") chosen = &entry;
    }
    auto text = GetString(*chosen, "template", Concat(file, ": chat_template"));
    if (!text.ok()) return text.status();
    return std::optional<std::string>(*std::move(text));
  }
  auto jinja = ReadOptionalFile(model_dir / "chat_template.jinja");
  if (!jinja.ok() || jinja->has_value()) return jinja;
  auto json = ReadOptionalJson(model_dir / "chat_template.json");
  if (!json.ok()) return json.status();
  if (const Json* value = OptionalMember(*json, "chat_template"); value && value->is_string()) {
    return std::optional<std::string>(value->get<std::string>());
  }
  return std::optional<std::string>();
}

bool Contains(const std::vector<int32_t>& ids, std::optional<int32_t> id) {
  return id && std::find(ids.begin(), ids.end(), *id) != ids.end();
}

}  // namespace

absl::StatusOr<TokenizerConfig> LoadTokenizerConfig(const fs::path& model_dir,
                                                    const Tokenizer& tokenizer) {
  const std::string tc_file = (model_dir / "tokenizer_config.json").string();
  const std::string gc_file = (model_dir / "generation_config.json").string();
  const std::string mc_file = (model_dir / "config.json").string();
  auto tokenizer_config = ReadOptionalJson(tc_file);
  if (!tokenizer_config.ok()) return tokenizer_config.status();
  auto generation_config = ReadOptionalJson(gc_file);
  if (!generation_config.ok()) return generation_config.status();
  auto model_config = ReadOptionalJson(mc_file);
  if (!model_config.ok()) return model_config.status();

  TokenizerConfig config;
  struct Source {
    const Json& json;
    const std::string& file;
  };
  for (const Source& source :
       {Source{*generation_config, gc_file}, Source{*model_config, mc_file}}) {
    auto eos = IdList(source.json, "eos_token_id", source.file, tokenizer);
    if (!eos.ok()) return eos.status();
    if (config.eos_token_ids.empty()) config.eos_token_ids = *std::move(eos);
    auto bos = IdList(source.json, "bos_token_id", source.file, tokenizer);
    if (!bos.ok()) return bos.status();
    if (!config.bos_token_id && !bos->empty()) config.bos_token_id = bos->front();
    auto pad = IdList(source.json, "pad_token_id", source.file, tokenizer);
    if (!pad.ok()) return pad.status();
    if (!config.pad_token_id && !pad->empty()) config.pad_token_id = pad->front();
  }
  auto eos_token = TokenId(*tokenizer_config, "eos_token", tc_file, tokenizer);
  if (!eos_token.ok()) return eos_token.status();
  if (*eos_token && !Contains(config.eos_token_ids, *eos_token)) {
    config.eos_token_ids.push_back(**eos_token);
  }
  auto bos_token = TokenId(*tokenizer_config, "bos_token", tc_file, tokenizer);
  if (!bos_token.ok()) return bos_token.status();
  if (!config.bos_token_id) config.bos_token_id = *bos_token;
  auto pad_token = TokenId(*tokenizer_config, "pad_token", tc_file, tokenizer);
  if (!pad_token.ok()) return pad_token.status();
  if (!config.pad_token_id) config.pad_token_id = *pad_token;

  const bool adds_bos = Contains(tokenizer.ids_added_before(), config.bos_token_id);
  const bool adds_eos = !config.eos_token_ids.empty() &&
                        Contains(tokenizer.ids_added_after(), config.eos_token_ids.front());
  auto add_bos = GetBool(*tokenizer_config, "add_bos_token", tc_file, adds_bos);
  if (!add_bos.ok()) return add_bos.status();
  auto add_eos = GetBool(*tokenizer_config, "add_eos_token", tc_file, adds_eos);
  if (!add_eos.ok()) return add_eos.status();
  config.add_bos_token = *add_bos;
  config.add_eos_token = *add_eos;

  auto chat_template = ChatTemplate(*tokenizer_config, model_dir);
  if (!chat_template.ok()) return chat_template.status();
  config.chat_template = *std::move(chat_template);
  return config;
}

absl::StatusOr<ModelTokenizer> LoadModelTokenizer(const fs::path& model_dir) {
  auto tokenizer = Tokenizer::FromFile((model_dir / "tokenizer.json").string());
  if (!tokenizer.ok()) return tokenizer.status();
  auto config = LoadTokenizerConfig(model_dir, **tokenizer);
  if (!config.ok()) return config.status();
  return ModelTokenizer{*std::move(tokenizer), *std::move(config)};
}

}  // namespace ropewire::tokenizer
