#include "tokenizer/pattern.h"

#include <optional>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

// Oniguruma's classes, spelled for PCRE2 (checked against the reference with probes: \s has
// U+0085 and the Z categories but not U+001C..U+001F; \w takes Alphabetic, marks, numbers and
// connector punctuation).
constexpr std::string_view kSpaceItems = "\\t-\\r\\x{85}\\p{Z}";
constexpr std::string_view kWordItems = "\\p{Alphabetic}\\p{M}\\p{N}\\p{Pc}";
constexpr std::string_view kWordItemsInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view kHexItems = "0-9A-Fa-f";

// Per-thread PCRE2 match state: match data for one pair and a JIT stack that can grow to 8 MiB
// (the default is 32 KiB of machine stack). The match limit stays PCRE2's default of ten
// million backtracking steps, the same bound as Oniguruma's retry limit in the reference: a
// pattern that needs more fails with an error (the reference panics).
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, jit_stack); }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& ThreadMatchState() {
  thread_local MatchState state;
  return state;
}

std::string Pcre2ErrorMessage(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

size_t CharLengthAt(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 1;
  return Utf8SequenceLength(static_cast<unsigned char>(text[pos]));
}

// The onig crate's find_iter (which the reference uses): non-overlapping matches, where an
// empty match at the very position the previous match ended is skipped by moving one
// character on. An empty match anywhere else is a match (it still splits the text).
template <typename FindFn>
absl::Status IterateMatches(std::string_view text, FindFn find,
                            std::vector<std::pair<size_t, size_t>>& matches) {
  size_t last_end = 0;
  std::optional<size_t> last_match_end;
  while (last_end <= text.size()) {
    size_t begin = 0, end = 0;
    absl::StatusOr<bool> found = find(last_end, begin, end);
    if (!found.ok()) return found.status();
    if (!*found) break;
    if (begin == end && last_match_end == end) {
      last_end += CharLengthAt(text, last_end);
      continue;
    }
    last_end = end;
    last_match_end = end;
    matches.emplace_back(begin, end);
  }
  return absl::OkStatus();
}

// Matches interleaved with the gaps between them, covering the whole text.
void MatchesToSpans(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches,
                    std::vector<MatchSpan>& out) {
  out.clear();
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  size_t previous = 0;
  for (const auto& [begin, end] : matches) {
    if (previous != begin) out.push_back({previous, begin, false});
    out.push_back({begin, end, true});
    previous = end;
  }
  if (previous != text.size()) out.push_back({previous, text.size(), false});
}

class RegexPattern : public Pattern {
 public:
  explicit RegexPattern(std::shared_ptr<const Regex> regex) : regex_(std::move(regex)) {}
  absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const override {
    thread_local std::vector<std::pair<size_t, size_t>> matches;
    matches.clear();
    if (absl::Status status = regex_->FindAll(text, matches); !status.ok()) return status;
    MatchesToSpans(text, matches, out);
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const Regex> regex_;
};

class LiteralPattern : public Pattern {
 public:
  explicit LiteralPattern(std::string literal) : literal_(std::move(literal)) {}
  absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    auto find = [&](size_t start, size_t& begin, size_t& end) -> absl::StatusOr<bool> {
      const size_t at = text.find(literal_, start);
      if (at == std::string_view::npos) return false;
      begin = at;
      end = at + literal_.size();
      return true;
    };
    if (absl::Status status = IterateMatches(text, find, matches); !status.ok()) return status;
    MatchesToSpans(text, matches, out);
    return absl::OkStatus();
  }

 private:
  std::string literal_;
};

class CharPredicatePattern : public Pattern {
 public:
  explicit CharPredicatePattern(std::function<bool(char32_t)> predicate)
      : predicate_(std::move(predicate)) {}
  absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const override {
    out.clear();
    if (text.empty()) {
      out.push_back({0, 0, false});
      return absl::OkStatus();
    }
    size_t last_offset = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t begin = pos;
      const char32_t cp = NextCodePoint(text, pos);
      if (!predicate_(cp)) continue;
      if (last_offset < begin) out.push_back({last_offset, begin, false});
      out.push_back({begin, pos, true});
      last_offset = pos;
    }
    if (text.size() > last_offset) out.push_back({last_offset, text.size(), false});
    return absl::OkStatus();
  }

 private:
  std::function<bool(char32_t)> predicate_;
};

class WordOrSymbolRunPattern : public Pattern {
 public:
  absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const override {
    std::vector<std::pair<size_t, size_t>> runs;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t begin = pos;
      const char32_t cp = NextCodePoint(text, pos);
      if (IsWhitespace(cp)) continue;
      const bool word = IsRegexWordChar(cp);
      size_t end = pos;
      while (end < text.size()) {
        size_t next = end;
        const char32_t following = NextCodePoint(text, next);
        const bool same = word ? IsRegexWordChar(following)
                               : !IsRegexWordChar(following) && !IsWhitespace(following);
        if (!same) break;
        end = next;
      }
      runs.emplace_back(begin, end);
      pos = end;
    }
    MatchesToSpans(text, runs, out);
    return absl::OkStatus();
  }
};

class InvertedPattern : public Pattern {
 public:
  explicit InvertedPattern(std::unique_ptr<Pattern> inner) : inner_(std::move(inner)) {}
  absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const override {
    if (absl::Status status = inner_->FindMatches(text, out); !status.ok()) return status;
    for (MatchSpan& span : out) span.is_match = !span.is_match;
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Pattern> inner_;
};

// Appends the PCRE2 spelling of the Oniguruma escape `\<letter>`, or returns false to keep it.
bool AppendTranslatedEscape(char letter, bool in_class, std::string& out) {
  std::string_view items;
  bool negated = false;
  switch (letter) {
    case 's': items = kSpaceItems; break;
    case 'S':
      items = kSpaceItems;
      negated = true;
      break;
    case 'w': items = in_class ? kWordItemsInClass : kWordItems; break;
    case 'W':
      items = kWordItems;
      negated = true;
      break;
    case 'h': items = kHexItems; break;
    case 'H':
      items = kHexItems;
      negated = true;
      break;
    default: return false;
  }
  if (in_class) {
    if (negated) return false;  // a negated set cannot be spliced into a class; keep PCRE2's
    out.append(items);
  } else {
    out.append(negated ? "[^" : "[");
    out.append(items);
    out.push_back(']');
  }
  return true;
}

// Whether PCRE2 knows `name` as a script. PCRE2 (10.40+) makes \p{Han} match the script
// *extensions* too (so "、" counts as Han), while Oniguruma matches the Script property only;
// \p{sc:Han} is PCRE2's spelling of the latter.
bool IsScriptName(std::string_view name) {
  const std::string probe = Concat("\\p{sc:", name, "}");
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(probe.data()), probe.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) return false;
  pcre2_code_free(code);
  return true;
}

// Copies the property escape \p{...} / \P{...} at `pattern[i]`, naming scripts with "sc:".
// Returns the index just past it.
size_t AppendPropertyEscape(std::string_view pattern, size_t i, std::string& out) {
  const size_t close = pattern.find('}', i + 3);
  if (i + 2 >= pattern.size() || pattern[i + 2] != '{' || close == std::string_view::npos) {
    out.append(pattern.substr(i, 2));
    return i + 2;
  }
  std::string_view name = pattern.substr(i + 3, close - i - 3);
  const bool negated = !name.empty() && name[0] == '^';
  if (negated) name.remove_prefix(1);
  out.append(pattern.substr(i, 3));
  if (negated) out.push_back('^');
  if (name.find(':') == std::string_view::npos && IsScriptName(name)) out.append("sc:");
  out.append(name);
  out.push_back('}');
  return close + 1;
}

}  // namespace

std::string TranslatePattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  size_t i = 0;
  while (i < pattern.size()) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      if (pattern[i + 1] == 'p' || pattern[i + 1] == 'P') {
        i = AppendPropertyEscape(pattern, i, out);
        continue;
      }
      if (!AppendTranslatedEscape(pattern[i + 1], in_class, out)) out.append(pattern.substr(i, 2));
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out.push_back(c);
      ++i;
      if (i < pattern.size() && pattern[i] == '^') out.push_back(pattern[i++]);
      if (i < pattern.size() && pattern[i] == ']') out.push_back(pattern[i++]);  // literal ']'
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t close = pattern.find(":]", i + 2);
      const size_t stop = close == std::string_view::npos ? pattern.size() : close + 2;
      out.append(pattern.substr(i, stop - i));
      i = stop;
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out.push_back(c);
    ++i;
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const Regex>> Regex::Compile(std::string_view pattern) {
  const std::string translated = TranslatePattern(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  // MULTILINE: Oniguruma's Ruby syntax treats ^ and $ as line anchors.
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(
        Concat("invalid regex '", pattern, "': ", Pcre2ErrorMessage(error_code)));
  }
  // Without JIT support PCRE2's interpreter is used; results are the same, only slower.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::shared_ptr<const Regex>(new Regex(std::string(pattern), code));
}

Regex::~Regex() { pcre2_code_free(code_); }

absl::StatusOr<bool> Regex::Find(std::string_view subject, size_t start, size_t& match_begin,
                                 size_t& match_end) const {
  MatchState& state = ThreadMatchState();
  int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                       PCRE2_NO_UTF_CHECK, state.data, state.context);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // the interpreter keeps its frames on the heap
    rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                     PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, state.data, state.context);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    return absl::ResourceExhaustedError(
        Concat("regex '", pattern_, "' failed: ", Pcre2ErrorMessage(rc)));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  match_begin = ovector[0];
  match_end = ovector[1];
  return true;
}

absl::Status Regex::FindAll(std::string_view subject,
                            std::vector<std::pair<size_t, size_t>>& matches) const {
  auto find = [&](size_t start, size_t& begin, size_t& end) {
    return Find(subject, start, begin, end);
  };
  return IterateMatches(subject, find, matches);
}

std::unique_ptr<Pattern> MakeRegexPattern(std::shared_ptr<const Regex> regex) {
  return std::make_unique<RegexPattern>(std::move(regex));
}

std::unique_ptr<Pattern> MakeLiteralPattern(std::string literal) {
  return std::make_unique<LiteralPattern>(std::move(literal));
}

std::unique_ptr<Pattern> MakeCharPredicatePattern(std::function<bool(char32_t)> predicate) {
  return std::make_unique<CharPredicatePattern>(std::move(predicate));
}

std::unique_ptr<Pattern> MakeWordOrSymbolRunPattern() {
  return std::make_unique<WordOrSymbolRunPattern>();
}

std::unique_ptr<Pattern> MakeInvertedPattern(std::unique_ptr<Pattern> inner) {
  return std::make_unique<InvertedPattern>(std::move(inner));
}

absl::StatusOr<PatternSpec> ParsePatternSpec(const Json& value, std::string_view where) {
  if (!value.is_object() || value.size() != 1) {
    return JsonError(where, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  const auto member = value.begin();
  const std::string& kind = member.key();
  const Json& text = member.value();
  if (!text.is_string()) return JsonError(JsonPath(where, kind), "expected a string");
  if (kind == "String") return PatternSpec{false, text.get<std::string>()};
  if (kind == "Regex") return PatternSpec{true, text.get<std::string>()};
  return JsonError(where, Concat("unknown pattern kind '", kind, "'"));
}

absl::StatusOr<std::unique_ptr<Pattern>> MakePattern(const PatternSpec& spec,
                                                     std::string_view where) {
  if (!spec.is_regex) return MakeLiteralPattern(spec.text);
  auto regex = Regex::Compile(spec.text);
  if (!regex.ok()) return JsonError(where, ToStd(regex.status().message()));
  return MakeRegexPattern(*std::move(regex));
}

}  // namespace ropewire::tokenizer
