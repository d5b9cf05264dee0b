#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

// The reference checks word boundaries with Rust regex `\w` and strips with `\s`.
bool EndsWithWordChar(std::string_view text) {
  if (text.empty()) return false;
  size_t pos = text.size() - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  return IsRegexWordChar(NextCodePoint(text, pos));
}

bool StartsWithWordChar(std::string_view text) {
  if (text.empty()) return false;
  size_t pos = 0;
  return IsRegexWordChar(NextCodePoint(text, pos));
}

// Start of the whitespace run that ends `text`.
size_t TrailingWhitespaceStart(std::string_view text) {
  size_t pos = 0;
  size_t run_start = text.size();
  while (pos < text.size()) {
    const size_t here = pos;
    if (!IsWhitespace(NextCodePoint(text, pos))) {
      run_start = text.size();
    } else if (run_start == text.size()) {
      run_start = here;
    }
  }
  return run_start;
}

// Length of the whitespace run that starts `text`.
size_t LeadingWhitespaceLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = pos;
    if (!IsWhitespace(NextCodePoint(text, next))) break;
    pos = next;
  }
  return pos;
}

absl::StatusOr<AddedToken> ParseAddedToken(const Json& json, std::string_view where) {
  AddedToken token;
  auto id = GetInt(json, "id", where, 0);
  if (!id.ok()) return id.status();
  if (*id < 0 || *id > INT32_MAX) return JsonError(JsonPath(where, "id"), "out of range");
  token.id = static_cast<int32_t>(*id);
  auto content = GetString(json, "content", where);
  if (!content.ok()) return content.status();
  if (!IsValidUtf8(*content)) return JsonError(JsonPath(where, "content"), "not valid UTF-8");
  token.content = *std::move(content);
  auto special = GetBool(json, "special", where, false);
  if (!special.ok()) return special.status();
  token.special = *special;
  struct Flag {
    const char* key;
    bool* value;
    bool fallback;
  };
  for (const Flag& flag :
       {Flag{"single_word", &token.single_word, false}, Flag{"lstrip", &token.lstrip, false},
        Flag{"rstrip", &token.rstrip, false},
        Flag{"normalized", &token.normalized, !token.special}}) {
    auto value = GetBool(json, flag.key, where, flag.fallback);
    if (!value.ok()) return value.status();
    *flag.value = *value;
  }
  return token;
}

}  // namespace

int32_t LiteralSetMatcher::Child(int32_t node, unsigned char byte) const {
  auto it = edges_.find((static_cast<uint64_t>(node) << 8) | byte);
  return it == edges_.end() ? -1 : it->second;
}

void LiteralSetMatcher::Add(std::string_view literal, int32_t value) {
  if (literal.empty()) return;
  first_bytes_[static_cast<unsigned char>(literal[0])] = true;
  int32_t node = 0;
  for (char c : literal) {
    const auto byte = static_cast<unsigned char>(c);
    int32_t child = Child(node, byte);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{});
      edges_.emplace((static_cast<uint64_t>(node) << 8) | byte, child);
    }
    node = child;
  }
  nodes_[node].value = value;
}

bool LiteralSetMatcher::FindNext(std::string_view text, size_t start, size_t& begin, size_t& end,
                                 int32_t& value) const {
  for (size_t from = start; from < text.size(); ++from) {
    if (!first_bytes_[static_cast<unsigned char>(text[from])]) continue;
    int32_t node = 0;
    int32_t best_value = -1;
    size_t best_end = 0;
    for (size_t pos = from; pos < text.size(); ++pos) {
      node = Child(node, static_cast<unsigned char>(text[pos]));
      if (node < 0) break;
      if (nodes_[node].value >= 0) {
        best_value = nodes_[node].value;
        best_end = pos + 1;
      }
    }
    if (best_value >= 0) {
      begin = from;
      end = best_end;
      value = best_value;
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<AddedToken>> AddedVocabulary::Parse(const Json* json,
                                                               std::string_view where) {
  std::vector<AddedToken> tokens;
  if (json == nullptr) return tokens;
  if (!json->is_array()) return JsonError(where, "expected an array");
  for (size_t i = 0; i < json->size(); ++i) {
    auto token = ParseAddedToken((*json)[i], JsonIndex(where, i));
    if (!token.ok()) return token.status();
    tokens.push_back(*std::move(token));
  }
  return tokens;
}

absl::Status AddedVocabulary::Build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& token = tokens_[i];
    token.decoded_content = token.content;
    if (token.content.empty()) continue;  // the reference ignores empty tokens
    index_by_id_[token.id] = i;
    id_by_content_[token.content] = token.id;
    if (token.special) special_contents_.insert(token.content);
    if (!token.normalized) {
      raw_matcher_.Add(token.content, static_cast<int32_t>(i));
      continue;
    }
    std::string matched = token.content;
    if (normalizer != nullptr) {
      if (absl::Status status = normalizer->Normalize(matched); !status.ok()) {
        return absl::InvalidArgumentError(
            Concat("added token '", token.content, "': normalizing it failed: ", status.message()));
      }
    }
    normalized_matcher_.Add(matched, static_cast<int32_t>(i));
    token.decoded_content = std::move(matched);
  }
  return absl::OkStatus();
}

void AddedVocabulary::SplitRaw(std::string_view text, std::vector<AddedTokenSplit>& out) const {
  Split(raw_matcher_, text, out);
}

void AddedVocabulary::SplitNormalized(std::string_view text,
                                      std::vector<AddedTokenSplit>& out) const {
  Split(normalized_matcher_, text, out);
}

// The reference's find_matches: candidate matches come from one leftmost-longest scan; a
// rejected single_word candidate does not let a shorter or later overlapping one through.
void AddedVocabulary::Split(const LiteralSetMatcher& matcher, std::string_view text,
                            std::vector<AddedTokenSplit>& out) const {
  out.clear();
  if (matcher.empty() || text.empty()) {
    out.push_back({0, text.size(), -1});
    return;
  }
  size_t covered = 0;  // end of the last emitted split
  size_t search_from = 0;
  size_t begin = 0, end = 0;
  int32_t index = 0;
  while (matcher.FindNext(text, search_from, begin, end, index)) {
    search_from = end;
    const AddedToken& token = tokens_[index];
    if (token.single_word) {
      const bool space_before = begin == 0 || !EndsWithWordChar(text.substr(0, begin));
      const bool space_after = end == text.size() || !StartsWithWordChar(text.substr(end));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) begin = std::max(TrailingWhitespaceStart(text.substr(0, begin)), covered);
    if (token.rstrip) end += LeadingWhitespaceLength(text.substr(end));
    begin = std::max(begin, covered);
    if (begin > covered) out.push_back({covered, begin, -1});
    out.push_back({begin, end, token.id});
    covered = end;
  }
  if (covered != text.size()) out.push_back({covered, text.size(), -1});
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = id_by_content_.find(content);
  if (it == id_by_content_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ropewire::tokenizer
