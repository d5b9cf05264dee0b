// The BPE model of tokenizer.json: vocabulary, merges by rank, byte fallback, unknown token,
// ignore_merges, continuing-subword prefix and end-of-word suffix.
//
// A word is split into characters (or, with byte fallback, <0xNN> tokens for characters missing
// from the vocabulary) and adjacent pairs are merged lowest rank first, leftmost first on ties,
// which is exactly the reference's priority-queue order. Results are cached per word.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"
#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {

class BpeModel {
 public:
  // Parses the "model" object of tokenizer.json (type "BPE").
  static absl::StatusOr<std::unique_ptr<BpeModel>> Parse(const Json& json, std::string_view where);
  ~BpeModel();

  // Words will arrive as raw bytes that stand for their ByteLevel-mapped form (the
  // pre-tokenizer deferred the mapping); see PreTokenizer::DeferByteMapping.
  void ExpectRawByteWords();

  // Appends the ids of one pre-tokenized word.
  void TokenizeWord(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token text of `id`, or nullptr when the vocabulary has no such id.
  const std::string* IdToToken(int32_t id) const;
  // Number of vocabulary entries (ids may have gaps).
  int32_t vocab_entries() const { return static_cast<int32_t>(vocab_.size()); }
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  class WordCache;

  BpeModel();
  absl::Status LoadVocab(const Json& vocab, std::string_view where);
  absl::Status LoadMerges(const Json& merges, std::string_view where);

  // Initial symbols of a word (characters, byte fallback, unknown token), as in the
  // reference's merge_word. `raw_bytes`: each byte is one ByteLevel character.
  void InitialSymbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void AddCharacterSymbol(std::string_view piece, bool is_first, bool is_last,
                          std::vector<Symbol>& symbols, int32_t& pending_unk) const;
  const Merge* FindMerge(int32_t left, int32_t right) const;
  void MergeSymbols(std::vector<Symbol>& symbols) const;
  void MergeSymbolsWithQueue(std::vector<Symbol>& symbols) const;
  void MergeInto(std::vector<Symbol>& symbols, int32_t left, int32_t new_id) const;

  StringMap<int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_present_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::array<int32_t, 256> byte_fallback_ids_{};  // <0xNN> ids, -1 when absent

  bool raw_byte_words_ = false;
  std::array<int32_t, 256> raw_byte_ids_{};  // id of each byte's mapped character, -1 if absent
  StringMap<int32_t> raw_vocab_;             // vocabulary keyed by raw bytes

  std::unique_ptr<WordCache> cache_;
};

}  // namespace ropewire::tokenizer
