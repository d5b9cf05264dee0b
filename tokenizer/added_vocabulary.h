// Added tokens (tokenizer.json "added_tokens"): matched in the text before the model runs, so
// "<|endoftext|>" is one token however the pre-tokenizer would have split it.
//
// Matching follows the reference: leftmost-longest, non-overlapping; tokens with
// normalized=false are matched on the raw text, tokens with normalized=true on the normalized
// text (against their own normalized content); single_word, lstrip and rstrip are honoured.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {

struct AddedToken {
  int32_t id = 0;  // see AssignAddedTokenIds in tokenizer.cc: the file's "id" is not trusted
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
  // The text decoding produces: the normalized content for normalized tokens, as the
  // reference's id_to_token returns it. Set by AddedVocabulary::Build.
  std::string decoded_content;
};

// A piece of text after added-token splitting: either an added token or plain text.
struct AddedTokenSplit {
  size_t begin;
  size_t end;
  int32_t token_id;  // -1 for plain text
};

// Leftmost-longest matcher over a fixed set of byte strings (a trie walked from each start).
class LiteralSetMatcher {
 public:
  void Add(std::string_view literal, int32_t value);
  bool empty() const { return nodes_.size() <= 1; }
  // The leftmost-longest match at or after `start`: sets begin/end/value, or returns false.
  bool FindNext(std::string_view text, size_t start, size_t& begin, size_t& end,
                int32_t& value) const;

 private:
  struct Node {
    int32_t value = -1;  // index of the literal ending here, -1 if none
  };
  int32_t Child(int32_t node, unsigned char byte) const;
  std::vector<Node> nodes_{Node{}};
  absl::flat_hash_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child
  bool first_bytes_[256] = {};
};

class AddedVocabulary {
 public:
  // Parses tokenizer.json's "added_tokens" array (null or absent means none).
  static absl::StatusOr<std::vector<AddedToken>> Parse(const Json* json, std::string_view where);

  // `normalizer` (may be null) turns the content of normalized tokens into what they match.
  absl::Status Build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits raw text on tokens with normalized=false.
  void SplitRaw(std::string_view text, std::vector<AddedTokenSplit>& out) const;
  // Splits normalized text on tokens with normalized=true.
  void SplitNormalized(std::string_view text, std::vector<AddedTokenSplit>& out) const;

  bool empty() const { return tokens_.empty(); }
  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> FindByContent(std::string_view content) const;
  // Whether decoding with skip_special_tokens drops a token with this text.
  bool IsSpecialContent(std::string_view content) const {
    return special_contents_.contains(content);
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  void Split(const LiteralSetMatcher& matcher, std::string_view text,
             std::vector<AddedTokenSplit>& out) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> index_by_id_;
  StringMap<int32_t> id_by_content_;
  StringSet special_contents_;
  LiteralSetMatcher raw_matcher_;         // values index tokens_
  LiteralSetMatcher normalized_matcher_;  // values index tokens_
};

}  // namespace ropewire::tokenizer
