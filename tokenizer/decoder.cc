#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {

using Outputs = std::vector<std::string>;

// One decoder step. Input is a whole token, or, once an earlier step joined the tokens
// (`joined`), the next piece of the single joined text. Outputs go to the next step.
class DecoderStage {
 public:
  virtual ~DecoderStage() = default;
  virtual void Push(std::string_view input, Outputs& out) = 0;
  virtual void Finish(Outputs& out) { (void)out; }
};

struct DecoderStepSpec {
  enum class Kind { kReplace, kStrip, kMetaspace, kByteFallback, kFuse, kByteLevel };
  Kind kind;
  bool joined_input = false;
  // Replace
  std::shared_ptr<const Pattern> pattern;
  bool pattern_is_regex = false;
  std::string literal;
  std::string content;
  // Strip / Metaspace: the character stripped or replaced
  char32_t character = 0;
  size_t strip_start = 0;
  size_t strip_stop = 0;
  bool drop_in_first_token = false;  // Metaspace unless prepend_scheme is "never"
};

namespace {

using Kind = DecoderStepSpec::Kind;

std::string ReplaceAll(const Pattern& pattern, std::string_view content, std::string_view text) {
  std::vector<MatchSpan> spans;
  // Patterns only fail on regex resource limits; keep the text unchanged then.
  if (!pattern.FindMatches(text, spans).ok()) return std::string(text);
  std::string out;
  for (const MatchSpan& span : spans) {
    if (span.is_match) {
      out.append(content);
    } else {
      out.append(text.substr(span.begin, span.end - span.begin));
    }
  }
  return out;
}

// Length of the longest suffix of `text` that is a proper prefix of `literal`.
size_t PartialMatchSuffix(std::string_view text, std::string_view literal) {
  const size_t longest = std::min(text.size(), literal.size() - 1);
  for (size_t length = longest; length > 0; --length) {
    if (text.substr(text.size() - length) == literal.substr(0, length)) return length;
  }
  return 0;
}

class ReplaceStage : public DecoderStage {
 public:
  explicit ReplaceStage(const DecoderStepSpec& spec) : spec_(spec) {}
  void Push(std::string_view input, Outputs& out) override {
    if (!spec_.joined_input) {
      out.push_back(ReplaceAll(*spec_.pattern, spec_.content, input));
      return;
    }
    held_.append(input);
    // A regex (or empty literal) may match across any boundary: replace once, at the end.
    if (spec_.pattern_is_regex || spec_.literal.empty()) return;
    std::string ready;
    size_t at;
    while ((at = held_.find(spec_.literal)) != std::string::npos) {
      ready.append(held_, 0, at);
      ready.append(spec_.content);
      held_.erase(0, at + spec_.literal.size());
    }
    const size_t keep = PartialMatchSuffix(held_, spec_.literal);
    ready.append(held_, 0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    if (!ready.empty()) out.push_back(std::move(ready));
  }
  void Finish(Outputs& out) override {
    if (!spec_.joined_input) return;
    out.push_back(ReplaceAll(*spec_.pattern, spec_.content, held_));
    held_.clear();
  }

 private:
  const DecoderStepSpec& spec_;
  std::string held_;
};

// Strip removes up to `start` leading and `stop` trailing copies of a character. On joined text
// the leading ones are dropped as they arrive and a trailing run is held until it is known
// whether more text follows.
class StripStage : public DecoderStage {
 public:
  explicit StripStage(const DecoderStepSpec& spec) : spec_(spec) {}
  void Push(std::string_view input, Outputs& out) override {
    if (!spec_.joined_input) {
      out.push_back(StripToken(input));
      return;
    }
    std::string ready;
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t begin = pos;
      const char32_t cp = NextCodePoint(input, pos);
      const std::string_view character = input.substr(begin, pos - begin);
      if (leading_open_ && cp == spec_.character && leading_stripped_ < spec_.strip_start) {
        ++leading_stripped_;
        continue;
      }
      leading_open_ = false;
      if (cp == spec_.character && spec_.strip_stop > 0) {
        trailing_.emplace_back(character);
        if (trailing_.size() > spec_.strip_stop) {  // too far from the end to be stripped
          ready.append(trailing_.front());
          trailing_.erase(trailing_.begin());
        }
        continue;
      }
      for (const std::string& held : trailing_) ready.append(held);
      trailing_.clear();
      ready.append(character);
    }
    if (!ready.empty()) out.push_back(std::move(ready));
  }
  void Finish(Outputs& out) override {
    (void)out;
    trailing_.clear();  // the reference strips them from the end of the text
  }

 private:
  std::string StripToken(std::string_view token) const {
    std::vector<std::pair<size_t, size_t>> chars;  // byte ranges of the characters
    std::vector<char32_t> code_points;
    size_t pos = 0;
    while (pos < token.size()) {
      const size_t begin = pos;
      code_points.push_back(NextCodePoint(token, pos));
      chars.emplace_back(begin, pos);
    }
    size_t start_cut = 0;
    while (start_cut < std::min(spec_.strip_start, chars.size()) &&
           code_points[start_cut] == spec_.character) {
      ++start_cut;
    }
    size_t stop_cut = chars.size();
    for (size_t i = 0; i < spec_.strip_stop && stop_cut > start_cut; ++i) {
      if (code_points[stop_cut - 1] != spec_.character) break;
      --stop_cut;
    }
    if (stop_cut <= start_cut) return "";
    return std::string(
        token.substr(chars[start_cut].first, chars[stop_cut - 1].second - chars[start_cut].first));
  }

  const DecoderStepSpec& spec_;
  bool leading_open_ = true;
  size_t leading_stripped_ = 0;
  std::vector<std::string> trailing_;
};

// Metaspace turns "▁" back into spaces; in the first token (all of a joined text) the
// reference drops them instead, unless the prepend scheme is "never".
class MetaspaceStage : public DecoderStage {
 public:
  explicit MetaspaceStage(const DecoderStepSpec& spec) : spec_(spec) {}
  void Push(std::string_view input, Outputs& out) override {
    const bool drop = spec_.drop_in_first_token && (first_ || spec_.joined_input);
    first_ = false;
    std::string text;
    text.reserve(input.size());
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t begin = pos;
      if (NextCodePoint(input, pos) != spec_.character) {
        text.append(input.substr(begin, pos - begin));
      } else if (!drop) {
        text.push_back(' ');
      }
    }
    out.push_back(std::move(text));
  }

 private:
  const DecoderStepSpec& spec_;
  bool first_ = true;
};

// The byte a "<0xNN>" token stands for, or -1.
int ByteTokenValue(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int high = hex(token[3]), low = hex(token[4]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

// ByteFallback turns runs of <0xNN> tokens into text: one string when the run is valid UTF-8,
// otherwise one U+FFFD per byte. A run is held until a token that is not a byte ends it.
class ByteFallbackStage : public DecoderStage {
 public:
  explicit ByteFallbackStage(const DecoderStepSpec& spec) : spec_(spec) {}
  void Push(std::string_view input, Outputs& out) override {
    if (spec_.joined_input) return PushJoined(input, out);
    const int byte = ByteTokenValue(input);
    if (byte >= 0) {
      bytes_.push_back(static_cast<char>(byte));
      return;
    }
    FlushBytes(out);
    out.emplace_back(input);
  }
  void Finish(Outputs& out) override {
    if (spec_.joined_input) {
      if (passing_through_) return;
      const int byte = ByteTokenValue(bytes_);
      if (byte < 0) {
        if (!bytes_.empty()) out.push_back(std::move(bytes_));
        bytes_.clear();
        return;
      }
      bytes_.assign(1, static_cast<char>(byte));
    }
    FlushBytes(out);
  }

 private:
  void FlushBytes(Outputs& out) {
    if (bytes_.empty()) return;
    if (IsValidUtf8(bytes_)) {
      out.push_back(std::move(bytes_));
    } else {
      for (size_t i = 0; i < bytes_.size(); ++i) out.emplace_back(kReplacementChar);
    }
    bytes_.clear();
  }
  // Joined text is one token: it is a byte token only if the whole text is "<0xNN>".
  void PushJoined(std::string_view input, Outputs& out) {
    if (passing_through_) {
      out.emplace_back(input);
      return;
    }
    bytes_.append(input);
    if (bytes_.size() > 6) {
      passing_through_ = true;
      out.push_back(std::move(bytes_));
      bytes_.clear();
    }
  }

  const DecoderStepSpec& spec_;
  std::string bytes_;
  bool passing_through_ = false;
};

class FuseStage : public DecoderStage {
 public:
  void Push(std::string_view input, Outputs& out) override { out.emplace_back(input); }
};

// ByteLevel maps each token's characters back to bytes (a token with a character outside the
// alphabet keeps its own UTF-8 bytes) and decodes the byte stream like from_utf8_lossy.
class ByteLevelStage : public DecoderStage {
 public:
  explicit ByteLevelStage(const DecoderStepSpec& spec) : spec_(spec) {}
  void Push(std::string_view input, Outputs& out) override {
    if (spec_.joined_input) {  // one token: whether it maps depends on all of it
      joined_.append(input);
      return;
    }
    AppendTokenBytes(input);
    Emit(false, out);
  }
  void Finish(Outputs& out) override {
    if (spec_.joined_input) AppendTokenBytes(joined_);
    Emit(true, out);
  }

 private:
  void AppendTokenBytes(std::string_view token) {
    if (!ByteLevelAlphabet::Get().Decode(token, bytes_)) bytes_.append(token);
  }
  void Emit(bool final, Outputs& out) {
    std::string text;
    const size_t consumed = AppendUtf8Lossy(bytes_, final, text);
    bytes_.erase(0, consumed);
    if (!text.empty()) out.push_back(std::move(text));
  }

  const DecoderStepSpec& spec_;
  std::string bytes_;
  std::string joined_;
};

std::unique_ptr<DecoderStage> MakeStage(const DecoderStepSpec& spec) {
  switch (spec.kind) {
    case Kind::kReplace: return std::make_unique<ReplaceStage>(spec);
    case Kind::kStrip: return std::make_unique<StripStage>(spec);
    case Kind::kMetaspace: return std::make_unique<MetaspaceStage>(spec);
    case Kind::kByteFallback: return std::make_unique<ByteFallbackStage>(spec);
    case Kind::kFuse: return std::make_unique<FuseStage>();
    case Kind::kByteLevel: return std::make_unique<ByteLevelStage>(spec);
  }
  return nullptr;
}

absl::StatusOr<char32_t> SingleCharacter(const Json& json, std::string_view key,
                                         std::string_view where, std::string_view fallback) {
  auto text = GetString(json, key, where, fallback);
  if (!text.ok()) return text.status();
  size_t pos = 0;
  if (text->empty() || (NextCodePoint(*text, pos), pos != text->size())) {
    return JsonError(JsonPath(where, key), "expected a single character");
  }
  pos = 0;
  return NextCodePoint(*text, pos);
}

absl::Status ParseStrip(const Json& json, std::string_view where, DecoderStepSpec& spec) {
  auto character = SingleCharacter(json, "content", where, " ");
  if (!character.ok()) return character.status();
  spec.character = *character;
  auto start = GetInt(json, "start", where, 0);
  if (!start.ok()) return start.status();
  auto stop = GetInt(json, "stop", where, 0);
  if (!stop.ok()) return stop.status();
  if (*start < 0 || *stop < 0) return JsonError(where, "start and stop must be >= 0");
  spec.strip_start = static_cast<size_t>(*start);
  spec.strip_stop = static_cast<size_t>(*stop);
  return absl::OkStatus();
}

absl::Status ParseReplace(const Json& json, std::string_view where, DecoderStepSpec& spec) {
  auto pattern_json = RequiredMember(json, "pattern", where);
  if (!pattern_json.ok()) return pattern_json.status();
  const std::string pattern_where = JsonPath(where, "pattern");
  auto pattern_spec = ParsePatternSpec(**pattern_json, pattern_where);
  if (!pattern_spec.ok()) return pattern_spec.status();
  auto pattern = MakePattern(*pattern_spec, pattern_where);
  if (!pattern.ok()) return pattern.status();
  auto content = GetString(json, "content", where);
  if (!content.ok()) return content.status();
  spec.pattern = *std::move(pattern);
  spec.pattern_is_regex = pattern_spec->is_regex;
  spec.literal = pattern_spec->text;
  spec.content = *std::move(content);
  return absl::OkStatus();
}

absl::Status ParseMetaspace(const Json& json, std::string_view where, DecoderStepSpec& spec) {
  auto character = SingleCharacter(json, "replacement", where, "\xE2\x96\x81");
  if (!character.ok()) return character.status();
  spec.character = *character;
  auto scheme = GetString(json, "prepend_scheme", where, "");
  if (!scheme.ok()) return scheme.status();
  if (scheme->empty()) {  // older files: add_prefix_space
    auto add_prefix_space = GetBool(json, "add_prefix_space", where, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    spec.drop_in_first_token = *add_prefix_space;
  } else if (*scheme == "always" || *scheme == "first" || *scheme == "never") {
    spec.drop_in_first_token = *scheme != "never";
  } else {
    return JsonError(JsonPath(where, "prepend_scheme"),
                     Concat("unknown prepend scheme '", *scheme, "'"));
  }
  return absl::OkStatus();
}

// Appends the steps of one decoder (flattening Sequence). `joined` tracks whether an earlier
// step has already joined the tokens into one text.
absl::Status ParseSteps(const Json& json, std::string_view where, bool& joined,
                        std::vector<DecoderStepSpec>& steps) {
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "Sequence") {
    auto list = RequiredMember(json, "decoders", where);
    if (!list.ok()) return list.status();
    const std::string list_where = JsonPath(where, "decoders");
    if (!(*list)->is_array()) return JsonError(list_where, "expected an array");
    for (size_t i = 0; i < (*list)->size(); ++i) {
      absl::Status status = ParseSteps((**list)[i], JsonIndex(list_where, i), joined, steps);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }
  DecoderStepSpec spec;
  spec.joined_input = joined;
  absl::Status status = absl::OkStatus();
  if (*type == "ByteLevel") {
    spec.kind = Kind::kByteLevel;
  } else if (*type == "Fuse") {
    spec.kind = Kind::kFuse;
  } else if (*type == "ByteFallback") {
    spec.kind = Kind::kByteFallback;
  } else if (*type == "Strip") {
    spec.kind = Kind::kStrip;
    status = ParseStrip(json, where, spec);
  } else if (*type == "Replace") {
    spec.kind = Kind::kReplace;
    status = ParseReplace(json, where, spec);
  } else if (*type == "Metaspace") {
    spec.kind = Kind::kMetaspace;
    status = ParseMetaspace(json, where, spec);
  } else {
    return UnsupportedComponent(where, "decoder", *type);
  }
  if (!status.ok()) return status;
  if (spec.kind == Kind::kByteLevel || spec.kind == Kind::kFuse) joined = true;
  steps.push_back(std::move(spec));
  return absl::OkStatus();
}

}  // namespace

Decoder::Decoder() = default;
Decoder::~Decoder() = default;

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Parse(const Json* json, std::string_view where) {
  std::unique_ptr<Decoder> decoder(new Decoder());
  if (json == nullptr) return decoder;
  bool joined = false;
  if (absl::Status status = ParseSteps(*json, where, joined, decoder->steps_); !status.ok()) {
    return status;
  }
  return decoder;
}

DecoderPipeline Decoder::NewPipeline() const {
  std::vector<std::unique_ptr<DecoderStage>> stages;
  stages.reserve(steps_.size());
  for (const DecoderStepSpec& spec : steps_) stages.push_back(MakeStage(spec));
  // Without any decoder the reference joins the token strings with single spaces.
  return DecoderPipeline(std::move(stages), /*join_with_spaces=*/steps_.empty());
}

DecoderPipeline::DecoderPipeline(std::vector<std::unique_ptr<DecoderStage>> stages,
                                 bool join_with_spaces)
    : stages_(std::move(stages)), join_with_spaces_(join_with_spaces) {}
DecoderPipeline::~DecoderPipeline() = default;
DecoderPipeline::DecoderPipeline(DecoderPipeline&&) noexcept = default;

namespace {

// Runs `items` through stages [first, end) and appends the results to `out`.
void RunStages(std::vector<std::unique_ptr<DecoderStage>>& stages, size_t first, Outputs items,
               std::string& out) {
  Outputs next;
  for (size_t s = first; s < stages.size(); ++s) {
    next.clear();
    for (const std::string& item : items) stages[s]->Push(item, next);
    items.swap(next);
  }
  for (const std::string& item : items) out.append(item);
}

}  // namespace

void DecoderPipeline::Push(std::string_view token, std::string& out) {
  if (join_with_spaces_) {
    if (!first_token_) out.push_back(' ');
    first_token_ = false;
    out.append(token);
    return;
  }
  RunStages(stages_, 0, Outputs{std::string(token)}, out);
}

void DecoderPipeline::Finish(std::string& out) {
  for (size_t s = 0; s < stages_.size(); ++s) {
    Outputs flushed;
    stages_[s]->Finish(flushed);
    RunStages(stages_, s + 1, std::move(flushed), out);
  }
}

}  // namespace ropewire::tokenizer
