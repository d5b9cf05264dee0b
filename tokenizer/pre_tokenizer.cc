#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

// GPT-2's pattern, used by the ByteLevel pre-tokenizer when use_regex is set.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The reference's is_punc: ASCII punctuation (which includes symbols such as '$' and '+') or a
// Unicode punctuation category.
bool IsPunctuationChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
  }
  return IsPunctuation(cp);
}

// Applies a split behavior to pattern spans (the reference's NormalizedString::split). Returns
// the kept ranges; empty ones are dropped by the caller.
void ApplyBehavior(const std::vector<MatchSpan>& spans, SplitBehavior behavior,
                   std::vector<std::pair<size_t, size_t>>& kept) {
  kept.clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const MatchSpan& span : spans) kept.emplace_back(span.begin, span.end);
      return;
    case SplitBehavior::kRemoved:
      for (const MatchSpan& span : spans) {
        if (!span.is_match) kept.emplace_back(span.begin, span.end);
      }
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const MatchSpan& span : spans) {
        const bool merge = behavior == SplitBehavior::kContiguous
                               ? span.is_match == previous_match
                               : span.is_match && !previous_match;
        if (merge && !kept.empty()) {
          kept.back().second = span.end;
        } else {
          kept.emplace_back(span.begin, span.end);
        }
        previous_match = span.is_match;
      }
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;  // in reverse order: whether the following span matched
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().first = it->begin;
        } else {
          kept.emplace_back(it->begin, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      return;
    }
  }
}

// Splits every piece with `pattern` and `behavior`.
absl::Status SplitPieces(const Pattern& pattern, SplitBehavior behavior, PieceBuffer& buffer) {
  thread_local std::vector<MatchSpan> spans;
  thread_local std::vector<std::pair<size_t, size_t>> kept;
  std::vector<Piece> result;
  result.reserve(buffer.pieces.size() * 2);
  for (const Piece& piece : buffer.pieces) {
    if (absl::Status status = pattern.FindMatches(buffer.View(piece), spans); !status.ok()) {
      return status;
    }
    ApplyBehavior(spans, behavior, kept);
    for (const auto& [begin, end] : kept) {
      if (begin == end) continue;
      result.push_back({piece.begin + begin, piece.begin + end, piece.at_origin && begin == 0});
    }
  }
  buffer.pieces = std::move(result);
  return absl::OkStatus();
}

// Replaces the text of `piece` with `text` (appended to the buffer).
void RewritePiece(PieceBuffer& buffer, Piece& piece, std::string_view text) {
  piece.begin = buffer.text.size();
  buffer.text.append(text);
  piece.end = buffer.text.size();
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status PreTokenize(PieceBuffer& buffer) const override {
    for (const auto& step : steps_) {
      if (absl::Status status = step->PreTokenize(buffer); !status.ok()) return status;
    }
    return absl::OkStatus();
  }
  bool DeferByteMapping() override { return !steps_.empty() && steps_.back()->DeferByteMapping(); }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Pattern> pattern, SplitBehavior behavior)
      : pattern_(std::move(pattern)), behavior_(behavior) {}
  absl::Status PreTokenize(PieceBuffer& buffer) const override {
    return SplitPieces(*pattern_, behavior_, buffer);
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  SplitBehavior behavior_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Pattern> split_pattern)
      : add_prefix_space_(add_prefix_space), split_pattern_(std::move(split_pattern)) {}

  absl::Status PreTokenize(PieceBuffer& buffer) const override {
    if (add_prefix_space_) {
      for (Piece& piece : buffer.pieces) {
        const std::string_view text = buffer.View(piece);
        if (!text.empty() && text[0] == ' ') continue;
        const std::string prefixed = Concat(" ", text);
        RewritePiece(buffer, piece, prefixed);
      }
    }
    if (split_pattern_ != nullptr) {
      if (absl::Status status = SplitPieces(*split_pattern_, SplitBehavior::kIsolated, buffer);
          !status.ok()) {
        return status;
      }
    }
    if (map_bytes_) {
      const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();
      std::string mapped;
      for (Piece& piece : buffer.pieces) {
        mapped.clear();
        alphabet.Encode(buffer.View(piece), mapped);
        RewritePiece(buffer, piece, mapped);
      }
    }
    return absl::OkStatus();
  }

  bool DeferByteMapping() override {
    map_bytes_ = false;
    return true;
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Pattern> split_pattern_;  // null when use_regex is false
  bool map_bytes_ = true;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    size_t pos = 0;
    const char32_t cp = NextCodePoint(replacement_, pos);
    split_pattern_ = MakeCharPredicatePattern([cp](char32_t c) { return c == cp; });
  }

  absl::Status PreTokenize(PieceBuffer& buffer) const override {
    std::string rewritten;
    for (Piece& piece : buffer.pieces) {
      const std::string_view text = buffer.View(piece);
      rewritten.clear();
      for (char c : text) {
        if (c == ' ') {
          rewritten.append(replacement_);
        } else {
          rewritten.push_back(c);
        }
      }
      const bool starts_with_replacement = rewritten.rfind(replacement_, 0) == 0;
      const bool prepend =
          !starts_with_replacement && (scheme_ == PrependScheme::kAlways ||
                                       (scheme_ == PrependScheme::kFirst && piece.at_origin));
      if (prepend) rewritten.insert(0, replacement_);
      RewritePiece(buffer, piece, rewritten);
    }
    if (!split_) return absl::OkStatus();
    return SplitPieces(*split_pattern_, SplitBehavior::kMergedWithNext, buffer);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  std::unique_ptr<Pattern> split_pattern_;
};

// Runs a fixed list of splits (Digits, Punctuation, WhitespaceSplit, BertPreTokenizer, ...).
class PatternSplitsPreTokenizer : public PreTokenizer {
 public:
  void Add(std::unique_ptr<Pattern> pattern, SplitBehavior behavior) {
    steps_.push_back({std::move(pattern), behavior});
  }
  absl::Status PreTokenize(PieceBuffer& buffer) const override {
    for (const Step& step : steps_) {
      if (absl::Status status = SplitPieces(*step.pattern, step.behavior, buffer); !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }

 private:
  struct Step {
    std::unique_ptr<Pattern> pattern;
    SplitBehavior behavior;
  };
  std::vector<Step> steps_;
};

absl::StatusOr<SplitBehavior> ParseBehavior(const Json& json, std::string_view where,
                                            SplitBehavior fallback) {
  const Json* member = OptionalMember(json, "behavior");
  if (member == nullptr) return fallback;
  const std::string at = JsonPath(where, "behavior");
  if (!member->is_string()) return JsonError(at, "expected a string");
  const std::string name = member->get<std::string>();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return JsonError(at, Concat("unknown split behavior '", name, "'"));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseSequence(const Json& json,
                                                            std::string_view where) {
  auto list = RequiredMember(json, "pretokenizers", where);
  if (!list.ok()) return list.status();
  const std::string list_where = JsonPath(where, "pretokenizers");
  if (!(*list)->is_array()) return JsonError(list_where, "expected an array");
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = ParsePreTokenizer((**list)[i], JsonIndex(list_where, i));
    if (!step.ok()) return step.status();
    steps.push_back(*std::move(step));
  }
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseSplit(const Json& json, std::string_view where) {
  auto pattern_json = RequiredMember(json, "pattern", where);
  if (!pattern_json.ok()) return pattern_json.status();
  const std::string pattern_where = JsonPath(where, "pattern");
  auto spec = ParsePatternSpec(**pattern_json, pattern_where);
  if (!spec.ok()) return spec.status();
  auto pattern = MakePattern(*spec, pattern_where);
  if (!pattern.ok()) return pattern.status();
  auto behavior = ParseBehavior(json, where, SplitBehavior::kIsolated);
  if (!behavior.ok()) return behavior.status();
  auto invert = GetBool(json, "invert", where, false);
  if (!invert.ok()) return invert.status();
  std::unique_ptr<Pattern> matcher = *std::move(pattern);
  if (*invert) matcher = MakeInvertedPattern(std::move(matcher));
  return std::make_unique<SplitPreTokenizer>(std::move(matcher), *behavior);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseByteLevel(const Json& json,
                                                             std::string_view where) {
  auto add_prefix_space = GetBool(json, "add_prefix_space", where, true);
  if (!add_prefix_space.ok()) return add_prefix_space.status();
  auto use_regex = GetBool(json, "use_regex", where, true);
  if (!use_regex.ok()) return use_regex.status();
  std::unique_ptr<Pattern> pattern;
  if (*use_regex) {
    auto regex = Regex::Compile(kGpt2Pattern);
    if (!regex.ok()) return regex.status();
    pattern = MakeRegexPattern(*std::move(regex));
  }
  return std::make_unique<ByteLevelPreTokenizer>(*add_prefix_space, std::move(pattern));
}

absl::StatusOr<PrependScheme> ParsePrependScheme(const Json& json, std::string_view where) {
  const Json* scheme = OptionalMember(json, "prepend_scheme");
  if (scheme == nullptr) {
    // Files written before prepend_scheme existed carry add_prefix_space instead.
    auto add_prefix_space = GetBool(json, "add_prefix_space", where, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    return *add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  const std::string at = JsonPath(where, "prepend_scheme");
  if (!scheme->is_string()) return JsonError(at, "expected a string");
  const std::string name = scheme->get<std::string>();
  if (name == "always") return PrependScheme::kAlways;
  if (name == "first") return PrependScheme::kFirst;
  if (name == "never") return PrependScheme::kNever;
  return JsonError(at, Concat("unknown prepend scheme '", name, "'"));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseMetaspace(const Json& json,
                                                             std::string_view where) {
  auto replacement = GetString(json, "replacement", where, "\xE2\x96\x81");
  if (!replacement.ok()) return replacement.status();
  if (replacement->empty() ||
      static_cast<size_t>(Utf8SequenceLength(static_cast<unsigned char>((*replacement)[0]))) !=
          replacement->size()) {
    return JsonError(JsonPath(where, "replacement"), "expected a single character");
  }
  auto scheme = ParsePrependScheme(json, where);
  if (!scheme.ok()) return scheme.status();
  auto split = GetBool(json, "split", where, true);
  if (!split.ok()) return split.status();
  return std::make_unique<MetaspacePreTokenizer>(*std::move(replacement), *scheme, *split);
}

// Pre-tokenizers that are a fixed list of character-class splits.
absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseCharacterSplits(const Json& json,
                                                                   std::string_view type,
                                                                   std::string_view where) {
  auto splits = std::make_unique<PatternSplitsPreTokenizer>();
  if (type == "Digits") {
    auto individual = GetBool(json, "individual_digits", where, false);
    if (!individual.ok()) return individual.status();
    splits->Add(MakeCharPredicatePattern(IsNumeric),
                *individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  } else if (type == "Punctuation") {
    auto behavior = ParseBehavior(json, where, SplitBehavior::kIsolated);
    if (!behavior.ok()) return behavior.status();
    splits->Add(MakeCharPredicatePattern(IsPunctuationChar), *behavior);
  } else if (type == "WhitespaceSplit") {
    splits->Add(MakeCharPredicatePattern(IsWhitespace), SplitBehavior::kRemoved);
  } else if (type == "Whitespace") {
    splits->Add(MakeInvertedPattern(MakeWordOrSymbolRunPattern()), SplitBehavior::kRemoved);
  } else if (type == "BertPreTokenizer") {
    splits->Add(MakeCharPredicatePattern(IsWhitespace), SplitBehavior::kRemoved);
    splits->Add(MakeCharPredicatePattern(IsPunctuationChar), SplitBehavior::kIsolated);
  } else {  // CharDelimiterSplit
    auto delimiter = GetString(json, "delimiter", where);
    if (!delimiter.ok()) return delimiter.status();
    size_t pos = 0;
    if (delimiter->empty() || (NextCodePoint(*delimiter, pos), pos != delimiter->size())) {
      return JsonError(JsonPath(where, "delimiter"), "expected a single character");
    }
    pos = 0;
    const char32_t cp = NextCodePoint(*delimiter, pos);
    splits->Add(MakeCharPredicatePattern([cp](char32_t c) { return c == cp; }),
                SplitBehavior::kRemoved);
  }
  return splits;
}

}  // namespace

void PieceBuffer::Reset(std::string_view segment, bool at_origin) {
  text.assign(segment);
  pieces.clear();
  pieces.push_back({0, text.size(), at_origin});
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view where) {
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "Sequence") return ParseSequence(json, where);
  if (*type == "Split") return ParseSplit(json, where);
  if (*type == "ByteLevel") return ParseByteLevel(json, where);
  if (*type == "Metaspace") return ParseMetaspace(json, where);
  if (*type == "Digits" || *type == "Punctuation" || *type == "WhitespaceSplit" ||
      *type == "Whitespace" || *type == "BertPreTokenizer" || *type == "CharDelimiterSplit") {
    return ParseCharacterSplits(json, *type, where);
  }
  return UnsupportedComponent(where, "pre-tokenizer", *type);
}

}  // namespace ropewire::tokenizer
