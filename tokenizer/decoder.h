// Decoders of tokenizer.json, run as a streaming pipeline.
//
// The reference applies decoders to the whole list of token strings. Here each decoder is a
// stage that consumes token strings one at a time and emits text as soon as no later token can
// change it (a byte sequence still waiting for its last UTF-8 byte, a run of <0xNN> tokens that
// later bytes could still turn valid or invalid, trailing characters a Strip may remove). Full
// decoding pushes every token and then finishes the pipeline; streaming pushes one token per
// step. Both run the same code, so the concatenated stream is exactly the full decode.
//
// Once a stage joins tokens (ByteLevel, Fuse), later stages see the pieces of one growing text,
// as the reference sees one single string.
//
// Supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, Sequence, or no decoder
// (tokens joined with spaces). Others (WordPiece, BPEDecoder, CTC) are rejected at load time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"

namespace ropewire::tokenizer {

class DecoderStage;
struct DecoderStepSpec;

// Running state of one decode; not thread-safe, one per stream.
class DecoderPipeline {
 public:
  ~DecoderPipeline();
  DecoderPipeline(DecoderPipeline&&) noexcept;
  // Feeds one token string; appends any text that is now final to `out`.
  void Push(std::string_view token, std::string& out);
  // Ends the stream; appends everything still held back.
  void Finish(std::string& out);

 private:
  friend class Decoder;
  DecoderPipeline(std::vector<std::unique_ptr<DecoderStage>> stages, bool join_with_spaces);
  std::vector<std::unique_ptr<DecoderStage>> stages_;
  bool join_with_spaces_;
  bool first_token_ = true;
};

// The parsed, immutable decoder configuration; thread-safe.
class Decoder {
 public:
  // `json` may be null (no decoder: tokens joined with single spaces, like the reference).
  static absl::StatusOr<std::unique_ptr<Decoder>> Parse(const Json* json, std::string_view where);
  ~Decoder();

  DecoderPipeline NewPipeline() const;

 private:
  Decoder();
  std::vector<DecoderStepSpec> steps_;
};

}  // namespace ropewire::tokenizer
