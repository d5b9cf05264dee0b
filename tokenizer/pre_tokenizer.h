// Pre-tokenizers of tokenizer.json: split normalized text into the words the model encodes one
// at a time, and rewrite them (ByteLevel's byte mapping, Metaspace's "▁").
//
// Supported: ByteLevel, Split, Metaspace, Sequence, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit. Others (UnicodeScripts, FixedLength,
// ...) are rejected at load time with an error naming them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"

namespace ropewire::tokenizer {

// One word in progress: a range of PieceBuffer::text.
struct Piece {
  size_t begin;
  size_t end;
  // Whether the piece starts at offset 0 of the original input; Metaspace's "first" prepend
  // scheme only prepends there. Tracked as "first piece of the first segment": exact unless a
  // normalizer deletes the first characters or inserts text that a later split cuts off on its
  // own (the reference maps such pieces back through its offset alignments).
  bool at_origin;
};

// Words of one text segment, as ranges of a shared buffer. Splitting makes sub-ranges without
// copying; rewriting appends the new text to the buffer.
struct PieceBuffer {
  std::string text;
  std::vector<Piece> pieces;

  std::string_view View(const Piece& piece) const {
    return std::string_view(text).substr(piece.begin, piece.end - piece.begin);
  }
  // Resets to a single piece holding `segment`.
  void Reset(std::string_view segment, bool at_origin);
};

// How a split treats the matched delimiters (the reference's SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual absl::Status PreTokenize(PieceBuffer& buffer) const = 0;

  // Called on the top-level pre-tokenizer at load time. When the pipeline ends with ByteLevel's
  // byte-to-character mapping, that step is switched off and true is returned: the pieces stay
  // raw bytes and the model maps them itself, which saves building mapped strings per word.
  virtual bool DeferByteMapping() { return false; }
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view where);

}  // namespace ropewire::tokenizer
