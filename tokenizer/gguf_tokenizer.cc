#include "tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <array>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

using gguf::Metadata;

constexpr int kTokenTypeControl = 3;
constexpr int kTokenTypeUserDefined = 4;

constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// How llama.cpp pre-tokenizes for each tokenizer.ggml.pre name (llama-vocab.cpp), as
// tokenizer.json pre-tokenizers.
enum class PreTokenization { kGpt2, kDigitsThenGpt2, kLlama3, kQwen2, kLlamaCppDefault };

struct PreName {
  const char* name;
  PreTokenization kind;
};
constexpr PreName kPreNames[] = {
    {"gpt-2", PreTokenization::kGpt2},
    {"gpt2", PreTokenization::kGpt2},
    {"mpt", PreTokenization::kGpt2},
    {"olmo", PreTokenization::kGpt2},
    {"jais", PreTokenization::kGpt2},
    {"smollm", PreTokenization::kDigitsThenGpt2},
    {"starcoder", PreTokenization::kDigitsThenGpt2},
    {"refact", PreTokenization::kDigitsThenGpt2},
    {"command-r", PreTokenization::kDigitsThenGpt2},
    {"codeshell", PreTokenization::kDigitsThenGpt2},
    {"exaone", PreTokenization::kDigitsThenGpt2},
    {"minerva-7b", PreTokenization::kDigitsThenGpt2},
    {"llama3", PreTokenization::kLlama3},
    {"llama-v3", PreTokenization::kLlama3},
    {"llama-bpe", PreTokenization::kLlama3},
    {"falcon3", PreTokenization::kLlama3},
    {"pixtral", PreTokenization::kLlama3},
    {"dbrx", PreTokenization::kLlama3},
    {"smaug-bpe", PreTokenization::kLlama3},
    {"qwen2", PreTokenization::kQwen2},
    {"deepseek-r1-qwen", PreTokenization::kQwen2},
    {"stablelm2", PreTokenization::kQwen2},
    {"default", PreTokenization::kLlamaCppDefault},
};

Json SplitIsolated(const char* regex) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", regex}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

Json ByteLevel(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

Json Sequence(std::vector<Json> steps) {
  return {{"type", "Sequence"}, {"pretokenizers", std::move(steps)}};
}

Json PreTokenizerJson(PreTokenization kind) {
  switch (kind) {
    case PreTokenization::kGpt2: return ByteLevel(true);
    case PreTokenization::kDigitsThenGpt2:
      return Sequence({{{"type", "Digits"}, {"individual_digits", true}}, ByteLevel(true)});
    case PreTokenization::kLlama3: return Sequence({SplitIsolated(kLlama3Regex), ByteLevel(false)});
    case PreTokenization::kQwen2: return Sequence({SplitIsolated(kQwen2Regex), ByteLevel(false)});
    case PreTokenization::kLlamaCppDefault:
      return Sequence({SplitIsolated(R"([\p{P}\$\+<=>\^~\|]+)"), SplitIsolated(kGpt2Regex),
                       SplitIsolated(R"(\p{N}+)"), SplitIsolated("[0-9][0-9][0-9]"),
                       ByteLevel(false)});
  }
  return ByteLevel(true);
}

absl::StatusOr<Json> Gpt2PreTokenizer(const Metadata& metadata) {
  const std::string key = "tokenizer.ggml.pre";
  if (!metadata.Has(key)) return PreTokenizerJson(PreTokenization::kGpt2);
  auto name = metadata.String(key);
  if (!name.ok()) return name.status();
  std::vector<std::string> known;
  for (const PreName& pre : kPreNames) {
    if (*name == pre.name) return PreTokenizerJson(pre.kind);
    known.push_back(pre.name);
  }
  std::string list;
  for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
  return metadata.Error(key, Concat("names pre-tokenizer \"", *name,
                                    "\", which ropewire does not know (known: ", list, ")"));
}

// Everything the builders read from the metadata, checked once.
struct GgufVocabulary {
  std::string model;  // tokenizer.ggml.model
  std::vector<std::string_view> tokens;
  std::vector<int64_t> types;  // empty when the file has none
  std::vector<float> scores;   // empty when the file has none
  bool has_merges = false;
  std::vector<std::string_view> merges;
};

absl::StatusOr<GgufVocabulary> ReadVocabulary(const Metadata& metadata) {
  GgufVocabulary v;
  auto model = metadata.String("tokenizer.ggml.model");
  if (!model.ok()) return model.status();
  v.model = std::string(*model);
  auto tokens = metadata.StringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  v.tokens = *std::move(tokens);
  if (v.tokens.empty()) return metadata.Error("tokenizer.ggml.tokens", "is empty");
  if (v.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return metadata.Error("tokenizer.ggml.tokens", "holds more tokens than 32-bit ids address");
  }
  auto sized = [&](const char* key, size_t size) -> absl::Status {
    if (size == v.tokens.size()) return absl::OkStatus();
    return metadata.Error(key, Concat("has ", size, " entries for ", v.tokens.size(), " tokens"));
  };
  if (metadata.Has("tokenizer.ggml.token_type")) {
    auto types = metadata.IntegerArray("tokenizer.ggml.token_type");
    if (!types.ok()) return types.status();
    v.types = *std::move(types);
    if (absl::Status s = sized("tokenizer.ggml.token_type", v.types.size()); !s.ok()) return s;
  }
  if (metadata.Has("tokenizer.ggml.scores")) {
    auto scores = metadata.FloatArray("tokenizer.ggml.scores");
    if (!scores.ok()) return scores.status();
    v.scores = *std::move(scores);
    if (absl::Status s = sized("tokenizer.ggml.scores", v.scores.size()); !s.ok()) return s;
  }
  v.has_merges = metadata.Has("tokenizer.ggml.merges");
  if (v.has_merges) {
    auto merges = metadata.StringArray("tokenizer.ggml.merges");
    if (!merges.ok()) return merges.status();
    v.merges = *std::move(merges);
  }
  return v;
}

// Byte-level vocabularies are stored in GPT-2's byte alphabet; a token with any other character
// is respelled into it from its UTF-8 bytes, as transformers does.
std::string ByteLevelSpelling(std::string_view token) {
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();
  std::string bytes;
  if (alphabet.Decode(token, bytes)) return std::string(token);
  std::string spelled;
  alphabet.Encode(token, spelled);
  return spelled;
}

bool InByteAlphabet(std::string_view token) {
  std::string bytes;
  return ByteLevelAlphabet::Get().Decode(token, bytes);
}

// "left right" merges → [left, right] pairs (split at the first space, as transformers does for
// byte-level vocabularies, whose tokens have no spaces).
absl::StatusOr<Json> MergesFromFile(const Metadata& metadata, const GgufVocabulary& v) {
  Json merges = Json::array();
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string_view merge = v.merges[i];
    const size_t space = merge.find(' ');
    if (space == std::string_view::npos) {
      return metadata.Error("tokenizer.ggml.merges", Concat("entry ", i, " (\"", merge,
                                                            "\") is not two tokens split by "
                                                            "a space"));
    }
    merges.push_back({std::string(merge.substr(0, space)), std::string(merge.substr(space + 1))});
  }
  return merges;
}

// Code-point boundaries of a UTF-8 token (past the first character), where it can be cut in two.
std::vector<size_t> CutPoints(std::string_view token) {
  std::vector<size_t> cuts;
  size_t pos = 0;
  while (pos < token.size()) {
    NextCodePoint(token, pos);
    if (pos < token.size()) cuts.push_back(pos);
  }
  return cuts;
}

// transformers' generate_merges(vocab, scores): every cut of every token into two vocabulary
// tokens, ordered by the token's score (highest first), then by the lengths (in characters) of
// the left and right pieces (longest first), ties kept in vocabulary order, each token's cuts by
// the ids of their pieces.
Json MergesFromScores(const GgufVocabulary& v) {
  absl::flat_hash_map<std::string_view, int32_t> id_of;  // the last id of a repeated token
  for (size_t i = 0; i < v.tokens.size(); ++i) id_of[v.tokens[i]] = static_cast<int32_t>(i);
  struct Candidate {
    std::string_view left, right;
    double score;
    size_t left_chars, right_chars;
    int32_t left_id, right_id;
  };
  std::vector<Candidate> all;
  std::set<std::string_view> seen;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    const std::string_view token = v.tokens[i];
    if (!seen.insert(token).second) continue;  // a repeated token counts once, at its first place
    const double score = v.scores[id_of[token]];
    const std::vector<size_t> cuts = CutPoints(token);
    const size_t chars = cuts.size() + 1;
    std::vector<Candidate> local;
    for (size_t c = 0; c < cuts.size(); ++c) {
      const std::string_view left = token.substr(0, cuts[c]);
      const std::string_view right = token.substr(cuts[c]);
      auto l = id_of.find(left);
      auto r = id_of.find(right);
      if (l == id_of.end() || r == id_of.end()) continue;
      local.push_back({left, right, score, c + 1, chars - c - 1, l->second, r->second});
    }
    std::stable_sort(local.begin(), local.end(), [](const Candidate& a, const Candidate& b) {
      return std::pair(a.left_id, a.right_id) < std::pair(b.left_id, b.right_id);
    });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return std::tuple(a.score, a.left_chars, a.right_chars) >
           std::tuple(b.score, b.left_chars, b.right_chars);
  });
  Json merges = Json::array();
  for (const Candidate& c : all) merges.push_back({std::string(c.left), std::string(c.right)});
  return merges;
}

// Control tokens as special added tokens, user-defined ones as plain added tokens. In a
// byte-level vocabulary a control token outside the byte alphabet is a converter's mislabel
// and stays an ordinary token (transformers skips it too).
Json AddedTokens(const GgufVocabulary& v, bool byte_level) {
  Json added = Json::array();
  for (size_t i = 0; i < v.types.size(); ++i) {
    const bool control = v.types[i] == kTokenTypeControl;
    if (!control && v.types[i] != kTokenTypeUserDefined) continue;
    if (control && byte_level && !InByteAlphabet(v.tokens[i])) continue;
    added.push_back({{"id", static_cast<int64_t>(i)},
                     {"content", std::string(v.tokens[i])},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", control}});
  }
  return added;
}

// The ids named by tokenizer.ggml.{bos,eos,unknown,padding}_token_id, each checked to be a
// token of the vocabulary.
struct SpecialIds {
  std::optional<int32_t> bos, eos, unk, pad, eot, eom;
};

absl::StatusOr<std::optional<int32_t>> OptionalId(const Metadata& metadata, const char* name,
                                                  size_t vocabulary) {
  const std::string key = Concat("tokenizer.ggml.", name);
  if (!metadata.Has(key)) return std::nullopt;
  auto id = metadata.Integer(key);
  if (!id.ok()) return id.status();
  if (*id < 0 || static_cast<size_t>(*id) >= vocabulary) {
    return metadata.Error(key, Concat("is ", *id, ", outside the ", vocabulary, " tokens"));
  }
  return static_cast<int32_t>(*id);
}

absl::StatusOr<SpecialIds> ReadSpecialIds(const Metadata& metadata, size_t vocabulary) {
  SpecialIds ids;
  const std::pair<const char*, std::optional<int32_t>*> fields[] = {
      {"bos_token_id", &ids.bos},     {"eos_token_id", &ids.eos}, {"unknown_token_id", &ids.unk},
      {"padding_token_id", &ids.pad}, {"eot_token_id", &ids.eot}, {"eom_token_id", &ids.eom},
  };
  for (const auto& [name, field] : fields) {
    auto id = OptionalId(metadata, name, vocabulary);
    if (!id.ok()) return id.status();
    *field = *id;
  }
  return ids;
}

// Tokens the file names as BOS/EOS/UNK/PAD are special added tokens too (transformers registers
// them as its special tokens).
void AddNamedSpecialTokens(const GgufVocabulary& v, const SpecialIds& ids, Json& added) {
  std::set<int64_t> present;
  for (const Json& token : added) present.insert(token["id"].get<int64_t>());
  for (const std::optional<int32_t>& id : {ids.bos, ids.eos, ids.unk, ids.pad}) {
    if (!id || !present.insert(*id).second) continue;
    added.push_back({{"id", *id},
                     {"content", std::string(v.tokens[*id])},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
}

// BOS before / EOS after a single sequence, as add_bos_token / add_eos_token ask.
absl::StatusOr<Json> PostProcessorJson(const Metadata& metadata, const GgufVocabulary& v,
                                       const SpecialIds& ids, const TokenizerConfig& config) {
  Json single = Json::array();
  Json special_tokens = Json::object();
  auto add = [&](const char* flag, const std::optional<int32_t>& id,
                 const char* id_key) -> absl::Status {
    if (!id) {
      return metadata.Error(Concat("tokenizer.ggml.", flag),
                            Concat("is true, but tokenizer.ggml.", id_key, " is missing"));
    }
    const std::string token(v.tokens[*id]);
    single.push_back({{"SpecialToken", {{"id", token}, {"type_id", 0}}}});
    special_tokens[token] = {{"id", token}, {"ids", {*id}}, {"tokens", {token}}};
    return absl::OkStatus();
  };
  if (config.add_bos_token) {
    if (absl::Status s = add("add_bos_token", ids.bos, "bos_token_id"); !s.ok()) return s;
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (config.add_eos_token) {
    if (absl::Status s = add("add_eos_token", ids.eos, "eos_token_id"); !s.ok()) return s;
  }
  return Json{
      {"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", special_tokens}};
}

absl::StatusOr<TokenizerConfig> ReadTokenizerConfig(const Metadata& metadata,
                                                    const GgufVocabulary& v,
                                                    const SpecialIds& ids) {
  TokenizerConfig config;
  config.bos_token_id = ids.bos;
  config.pad_token_id = ids.pad;
  for (const std::optional<int32_t>& id : {ids.eos, ids.eot, ids.eom}) {
    if (id && std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), *id) ==
                  config.eos_token_ids.end()) {
      config.eos_token_ids.push_back(*id);
    }
  }
  // llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise.
  auto add_bos = metadata.Bool("tokenizer.ggml.add_bos_token", v.model == "llama");
  if (!add_bos.ok()) return add_bos.status();
  config.add_bos_token = *add_bos;
  auto add_eos = metadata.Bool("tokenizer.ggml.add_eos_token", false);
  if (!add_eos.ok()) return add_eos.status();
  config.add_eos_token = *add_eos;
  if (metadata.Has("tokenizer.chat_template")) {
    auto chat_template = metadata.String("tokenizer.chat_template");
    if (!chat_template.ok()) return chat_template.status();
    config.chat_template = std::string(*chat_template);
  }
  return config;
}

absl::StatusOr<Json> ByteLevelModel(const Metadata& metadata, const GgufVocabulary& v) {
  if (!v.has_merges) return metadata.Error("tokenizer.ggml.merges", "is missing");
  Json vocab = Json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    vocab[ByteLevelSpelling(v.tokens[i])] = static_cast<int64_t>(i);
  }
  auto merges = MergesFromFile(metadata, v);
  if (!merges.ok()) return merges.status();
  return Json{{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", ""},
              {"end_of_word_suffix", ""},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", false},
              {"vocab", std::move(vocab)},
              {"merges", *std::move(merges)}};
}

absl::StatusOr<Json> SentencePieceModel(const Metadata& metadata, const GgufVocabulary& v) {
  Json vocab = Json::object();
  for (size_t i = 0; i < v.tokens.size(); ++i) vocab[std::string(v.tokens[i])] = int64_t(i);
  Json merges;
  if (v.has_merges) {
    auto from_file = MergesFromFile(metadata, v);
    if (!from_file.ok()) return from_file.status();
    merges = *std::move(from_file);
  } else if (!v.scores.empty()) {
    merges = MergesFromScores(v);
  } else {
    return metadata.Error("tokenizer.ggml.scores", "is missing, and so are the merges");
  }
  return Json{{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"fuse_unk", true},
              {"byte_fallback", true},
              {"ignore_merges", false},
              {"vocab", std::move(vocab)},
              {"merges", std::move(merges)}};
}

// Metaspace with the file's add_space_prefix, and the Llama decoder chain.
absl::Status SentencePiecePipeline(const Metadata& metadata, Json& json) {
  auto prefix = metadata.Bool("tokenizer.ggml.add_space_prefix", true);
  if (!prefix.ok()) return prefix.status();
  json["pre_tokenizer"] = {{"type", "Metaspace"},
                           {"replacement", "\u2581"},
                           {"prepend_scheme", *prefix ? "first" : "never"},
                           {"split", false}};
  Json steps =
      Json::array({{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}});
  if (*prefix) {
    steps.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  json["decoder"] = {{"type", "Sequence"}, {"decoders", std::move(steps)}};
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> GgufTokenizerJson(const Metadata& metadata) {
  auto vocabulary = ReadVocabulary(metadata);
  if (!vocabulary.ok()) return vocabulary.status();
  const GgufVocabulary& v = *vocabulary;
  auto ids = ReadSpecialIds(metadata, v.tokens.size());
  if (!ids.ok()) return ids.status();
  auto config = ReadTokenizerConfig(metadata, v, *ids);
  if (!config.ok()) return config.status();
  Json json = {{"version", "1.0"}, {"normalizer", nullptr}};
  const bool byte_level = v.model == "gpt2";
  if (byte_level) {
    auto model = ByteLevelModel(metadata, v);
    if (!model.ok()) return model.status();
    json["model"] = *std::move(model);
    auto pre = Gpt2PreTokenizer(metadata);
    if (!pre.ok()) return pre.status();
    json["pre_tokenizer"] = *std::move(pre);
    json["decoder"] = {{"type", "ByteLevel"},
                       {"add_prefix_space", true},
                       {"trim_offsets", true},
                       {"use_regex", true}};
  } else if (v.model == "llama") {
    auto model = SentencePieceModel(metadata, v);
    if (!model.ok()) return model.status();
    json["model"] = *std::move(model);
    if (absl::Status s = SentencePiecePipeline(metadata, json); !s.ok()) return s;
  } else {
    return metadata.Error("tokenizer.ggml.model",
                          Concat("is \"", v.model, "\" (supported: gpt2, llama)"));
  }
  Json added = AddedTokens(v, byte_level);
  AddNamedSpecialTokens(v, *ids, added);
  json["added_tokens"] = std::move(added);
  auto post = PostProcessorJson(metadata, v, *ids, *config);
  if (!post.ok()) return post.status();
  json["post_processor"] = *std::move(post);
  return json;
}

absl::StatusOr<ModelTokenizer> LoadGgufTokenizer(const gguf::GgufFile& file) {
  const Metadata& metadata = file.metadata();
  auto json = GgufTokenizerJson(metadata);
  if (!json.ok()) return json.status();
  ModelTokenizer result;
  auto tokenizer = Tokenizer::FromJson(*json, Concat(file.source(), " (tokenizer metadata)"));
  if (!tokenizer.ok()) return tokenizer.status();
  result.tokenizer = *std::move(tokenizer);
  auto vocabulary = ReadVocabulary(metadata);
  if (!vocabulary.ok()) return vocabulary.status();
  auto ids = ReadSpecialIds(metadata, vocabulary->tokens.size());
  if (!ids.ok()) return ids.status();
  auto config = ReadTokenizerConfig(metadata, *vocabulary, *ids);
  if (!config.ok()) return config.status();
  result.config = *std::move(config);
  return result;
}

absl::StatusOr<ModelTokenizer> LoadGgufTokenizer(const std::string& path) {
  auto file = gguf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  return LoadGgufTokenizer(**file);
}

}  // namespace ropewire::tokenizer
