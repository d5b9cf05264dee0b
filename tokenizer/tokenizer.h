// A Hugging Face tokenizer.json, encoded and decoded in C++ with the same ids and text as the
// reference `tokenizers` library.
//
// Pipeline (as in the reference): added tokens with normalized=false are split off the raw
// text; each remaining segment is normalized and split on added tokens with normalized=true;
// the rest is pre-tokenized into words; the BPE model encodes each word; the post-processor
// adds BOS/EOS. Decoding maps ids to token strings and runs the decoder pipeline.
//
// Deliberate differences from the reference: text that is not valid UTF-8 and ids outside the
// vocabulary are errors (the reference cannot receive the former and silently drops the
// latter); the "truncation" and "padding" sections are ignored, as transformers does.
//
// Known limits: character classes come from PCRE2 (Unicode 14) and ICU (Unicode 15), while the
// reference's Oniguruma knows Unicode 15.1+, so characters assigned after Unicode 14 can
// pre-tokenize differently. A pre-tokenizer regex that needs more than ten million backtracking
// steps on one input (e.g. ten million spaces under the Llama-3 pattern) is an error here and a
// panic in the reference.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace ropewire::tokenizer {

class Tokenizer {
 public:
  // Loads a tokenizer.json file. Errors name the file and the offending component.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // Parses tokenizer.json text; `source` names it in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonText(
      std::string_view text, std::string_view source = "tokenizer.json");
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      const Json& json, std::string_view source = "tokenizer.json");

  // Token ids of `text` (UTF-8). With add_special_tokens the post-processor's BOS/EOS are added.
  // Thread-safe.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens = true) const;
  // Text of `ids`; skip_special_tokens leaves out added tokens marked special. Thread-safe.
  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids,
                                     bool skip_special_tokens = false) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token string of `id` (added tokens first, then the model vocabulary).
  const std::string* IdToToken(int32_t id) const;
  // Whether `id` is an added token marked special (dropped by skip_special_tokens).
  bool IsSpecialToken(int32_t id) const;
  // One past the largest id of the model vocabulary and the added tokens.
  int32_t id_limit() const { return id_limit_; }

  // Ids the post-processor puts before / after a sequence (empty without one).
  const std::vector<int32_t>& ids_added_before() const;
  const std::vector<int32_t>& ids_added_after() const;

  // A decoder pipeline for streaming; valid while this tokenizer lives.
  DecoderPipeline NewDecoderPipeline() const { return decoder_->NewPipeline(); }

 private:
  Tokenizer() = default;
  absl::Status Load(const Json& json);
  absl::Status LoadModel(const Json& json);
  absl::Status EncodeSegment(std::string_view segment, bool at_origin,
                             std::vector<int32_t>& ids) const;
  absl::Status EncodeNormalized(std::string_view text, bool at_origin,
                                std::vector<int32_t>& ids) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  int32_t id_limit_ = 0;
};

}  // namespace ropewire::tokenizer
