#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

// The per-thread pre-tokenization buffer is released after an input larger than this, so one
// huge request does not pin its memory to a thread for good.
constexpr size_t kMaxRetainedBufferBytes = 4 << 20;

// Prefixes an error with the file it came from, keeping its code.
absl::Status InSource(std::string_view source, const absl::Status& status) {
  return absl::Status(status.code(), Concat(source, ": ", status.message()));
}

// The reference ignores the ids written in "added_tokens" (it only warns when they differ): a
// token whose text is in the model vocabulary takes that id, any other the next id after the
// vocabulary's entry count, in file order. Real files agree with this; doing the same keeps
// hand-edited ones decoding like the reference.
void AssignAddedTokenIds(const BpeModel& model, std::vector<AddedToken>& tokens) {
  int32_t next_new_id = model.vocab_entries();
  StringMap<int32_t> assigned;
  for (AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    if (auto it = assigned.find(token.content); it != assigned.end()) {
      token.id = it->second;
    } else if (std::optional<int32_t> id = model.TokenToId(token.content)) {
      token.id = *id;
    } else {
      token.id = next_new_id++;
    }
    assigned[token.content] = token.id;
  }
}

const std::vector<int32_t>& NoIds() {
  static const std::vector<int32_t> empty;
  return empty;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(Concat(path, ": cannot open file"));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return absl::DataLossError(Concat(path, ": read failed"));
  return FromJsonText(contents.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJsonText(std::string_view text,
                                                                   std::string_view source) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception& error) {
    return absl::InvalidArgumentError(Concat(source, ": not valid JSON: ", error.what()));
  }
  return FromJson(json, source);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(const Json& json,
                                                               std::string_view source) {
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  if (absl::Status status = tokenizer->Load(json); !status.ok()) return InSource(source, status);
  return tokenizer;
}

absl::Status Tokenizer::LoadModel(const Json& json) {
  auto model_json = RequiredMember(json, "model", "");
  if (!model_json.ok()) return model_json.status();
  const Json& model = **model_json;
  if (!model.is_object()) return JsonError("model", "expected a JSON object");
  std::string type;
  if (const Json* type_json = OptionalMember(model, "type")) {
    if (!type_json->is_string()) return JsonError("model.type", "expected a string");
    type = type_json->get<std::string>();
  } else if (OptionalMember(model, "merges") != nullptr) {
    type = "BPE";  // files from before models were tagged: a merges list means BPE
  } else {
    return JsonError("model.type", "missing, and the model has no merges to show it is BPE");
  }
  if (type != "BPE") {
    return absl::UnimplementedError(
        Concat("model.type: unsupported model type '", type, "' (ropewire supports BPE)"));
  }
  auto bpe = BpeModel::Parse(model, "model");
  if (!bpe.ok()) return bpe.status();
  model_ = *std::move(bpe);
  return absl::OkStatus();
}

absl::Status Tokenizer::Load(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  if (absl::Status status = LoadModel(json); !status.ok()) return status;
  if (const Json* normalizer = OptionalMember(json, "normalizer")) {
    auto parsed = ParseNormalizer(*normalizer, "normalizer");
    if (!parsed.ok()) return parsed.status();
    normalizer_ = *std::move(parsed);
  }
  if (const Json* pre_tokenizer = OptionalMember(json, "pre_tokenizer")) {
    auto parsed = ParsePreTokenizer(*pre_tokenizer, "pre_tokenizer");
    if (!parsed.ok()) return parsed.status();
    pre_tokenizer_ = *std::move(parsed);
    if (pre_tokenizer_->DeferByteMapping()) model_->ExpectRawByteWords();
  }
  if (const Json* post_processor = OptionalMember(json, "post_processor")) {
    auto parsed = ParsePostProcessor(*post_processor, "post_processor");
    if (!parsed.ok()) return parsed.status();
    post_processor_ = *std::move(parsed);
  }
  auto decoder = Decoder::Parse(OptionalMember(json, "decoder"), "decoder");
  if (!decoder.ok()) return decoder.status();
  decoder_ = *std::move(decoder);

  auto added = AddedVocabulary::Parse(OptionalMember(json, "added_tokens"), "added_tokens");
  if (!added.ok()) return added.status();
  AssignAddedTokenIds(*model_, *added);
  id_limit_ = model_->id_limit();
  for (const AddedToken& token : *added) id_limit_ = std::max(id_limit_, token.id + 1);
  if (absl::Status status = added_.Build(*std::move(added), normalizer_.get()); !status.ok()) {
    return status;
  }
  // Every id a post-processor adds must decode.
  for (const auto* ids : {&ids_added_before(), &ids_added_after()}) {
    for (int32_t id : *ids) {
      if (IdToToken(id) == nullptr) {
        return JsonError("post_processor",
                         Concat("adds id ", id, " which is not in the vocabulary"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens) const {
  if (const size_t bad = FirstInvalidUtf8Offset(text); bad != text.size()) {
    return absl::InvalidArgumentError(
        Concat("text is not valid UTF-8 (first bad byte at offset ", bad, ")"));
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<AddedTokenSplit> splits;
  added_.SplitRaw(text, splits);
  for (const AddedTokenSplit& split : splits) {
    if (split.token_id >= 0) {
      ids.push_back(split.token_id);
      continue;
    }
    const std::string_view segment = text.substr(split.begin, split.end - split.begin);
    if (segment.empty()) continue;
    if (absl::Status status = EncodeSegment(segment, split.begin == 0, ids); !status.ok()) {
      return status;
    }
  }
  if (add_special_tokens && post_processor_ != nullptr) post_processor_->Apply(ids);
  return ids;
}

// Normalizes a segment between raw added tokens, then splits it on normalized added tokens.
absl::Status Tokenizer::EncodeSegment(std::string_view segment, bool at_origin,
                                      std::vector<int32_t>& ids) const {
  if (normalizer_ == nullptr) return EncodeNormalized(segment, at_origin, ids);
  std::string normalized(segment);
  if (absl::Status status = normalizer_->Normalize(normalized); !status.ok()) return status;
  return EncodeNormalized(normalized, at_origin, ids);
}

absl::Status Tokenizer::EncodeNormalized(std::string_view text, bool at_origin,
                                         std::vector<int32_t>& ids) const {
  std::vector<AddedTokenSplit> splits;
  added_.SplitNormalized(text, splits);
  thread_local PieceBuffer buffer;
  for (const AddedTokenSplit& split : splits) {
    if (split.token_id >= 0) {
      ids.push_back(split.token_id);
      continue;
    }
    if (split.begin == split.end) continue;
    buffer.Reset(text.substr(split.begin, split.end - split.begin), at_origin && split.begin == 0);
    if (pre_tokenizer_ != nullptr) {
      if (absl::Status status = pre_tokenizer_->PreTokenize(buffer); !status.ok()) return status;
    }
    for (const Piece& piece : buffer.pieces) model_->TokenizeWord(buffer.View(piece), ids);
  }
  if (buffer.text.capacity() > kMaxRetainedBufferBytes) buffer = PieceBuffer();
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  DecoderPipeline pipeline = decoder_->NewPipeline();
  std::string text;
  for (int32_t id : ids) {
    const std::string* token = IdToToken(id);
    if (token == nullptr) {
      return absl::InvalidArgumentError(Concat("token id ", id, " is not in the vocabulary"));
    }
    if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
    pipeline.Push(*token, text);
  }
  pipeline.Finish(text);
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto id = added_.FindByContent(token)) return id;
  return model_->TokenToId(token);
}

const std::string* Tokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* token = added_.FindById(id)) return &token->decoded_content;
  return model_->IdToToken(id);
}

bool Tokenizer::IsSpecialToken(int32_t id) const {
  const std::string* token = IdToToken(id);
  return token != nullptr && added_.IsSpecialContent(*token);
}

const std::vector<int32_t>& Tokenizer::ids_added_before() const {
  return post_processor_ ? post_processor_->before() : NoIds();
}

const std::vector<int32_t>& Tokenizer::ids_added_after() const {
  return post_processor_ ? post_processor_->after() : NoIds();
}

}  // namespace ropewire::tokenizer
