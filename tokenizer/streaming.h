// Streaming text output: incremental detokenization and stop strings.
//
// DecodeStream turns generated token ids into text deltas. Every delta is valid UTF-8 and the
// deltas concatenated (with Finish()) are exactly Tokenizer::Decode of all the ids: text is
// held back only while a later token can still change it (see decoder.h).
//
// StopStringMatcher watches the produced text for stop strings, across token boundaries, and
// holds back only the end of the text that could still be the start of a stop string. The stop
// string itself is never returned.
//
// TextStreamer combines the two for a generation request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/tokenizer.h"

namespace ropewire::tokenizer {

class DecodeStream {
 public:
  // `tokenizer` must outlive the stream.
  DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Adds one generated id; returns the text that became final (often empty). An id outside the
  // vocabulary is an error and leaves the stream unchanged.
  absl::StatusOr<std::string> Step(int32_t id);
  // Ends the stream; returns the text still held back. Further calls return "".
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  DecoderPipeline pipeline_;
  bool finished_ = false;
};

class StopStringMatcher {
 public:
  // Empty stop strings never match.
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  struct Output {
    std::string text;                  // safe to send: cannot be part of a stop string
    std::optional<size_t> stop_index;  // once one matched: its index in the constructor's list
  };

  // Feeds the next text; after a match, everything later is dropped. When several stop
  // strings occur, the one that ends first in the text wins (the earliest-starting one when
  // they end together), so the result does not depend on how the text was chunked.
  Output Push(std::string_view text);
  // Generation ended without a stop string: returns the held-back text.
  std::string Finish();

  bool stopped() const { return stop_index_.has_value(); }
  std::optional<size_t> stop_index() const { return stop_index_; }

 private:
  std::vector<std::string> stop_strings_;
  std::string held_;
  std::optional<size_t> stop_index_;
};

class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tokenizer, bool skip_special_tokens,
               std::vector<std::string> stop_strings);

  // Text to send for this token, and the stop string index once one matched (the request
  // should then finish; later calls return nothing).
  absl::StatusOr<StopStringMatcher::Output> Step(int32_t id);
  // Generation ended for another reason: the remaining text (a stop string may still complete
  // in the text that was held back for UTF-8 or decoder reasons).
  StopStringMatcher::Output Finish();

 private:
  DecodeStream decode_;
  StopStringMatcher stops_;
};

}  // namespace ropewire::tokenizer
