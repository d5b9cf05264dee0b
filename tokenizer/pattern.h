// Split patterns of the tokenizer pipeline: regular expressions (PCRE2), literal strings and
// per-character predicates, with the match semantics of the reference `tokenizers` library.
//
// The reference compiles its patterns with Oniguruma. ropewire uses PCRE2 because Debian ships
// it with a JIT (the pre-tokenizer regex is the hottest part of encoding), it supports the
// Unicode properties (\p{L}, \p{N}) and lookahead ((?!\S)) these patterns use, and it is already
// a project dependency. Where the two engines define a shorthand class differently (\s, \w, \h)
// the pattern is rewritten to Oniguruma's definition before compiling; see TranslatePattern.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"

struct pcre2_real_code_8;

namespace ropewire::tokenizer {

// A piece of a split text: [begin, end) and whether a pattern matched it.
struct MatchSpan {
  size_t begin;
  size_t end;
  bool is_match;
};

// Rewrites Oniguruma shorthand classes into explicit PCRE2 classes with Oniguruma's meaning
// (e.g. \s also matches U+0085 but not U+001C..U+001F). Exposed for tests.
std::string TranslatePattern(std::string_view onig_pattern);

// A compiled PCRE2 regex (UTF + UCP, JIT when available). Thread-safe.
class Regex {
 public:
  static absl::StatusOr<std::shared_ptr<const Regex>> Compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Finds the leftmost match at or after `start` in `subject` (valid UTF-8, `start` on a
  // character boundary). Returns false when there is none.
  absl::StatusOr<bool> Find(std::string_view subject, size_t start, size_t& match_begin,
                            size_t& match_end) const;

  // All non-overlapping matches in order, with the onig crate's find_iter rules for empty
  // matches.
  absl::Status FindAll(std::string_view subject,
                       std::vector<std::pair<size_t, size_t>>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(std::string pattern, pcre2_real_code_8* code) : pattern_(std::move(pattern)), code_(code) {}
  std::string pattern_;
  pcre2_real_code_8* code_;
};

// What a split looks for. FindMatches covers the whole text with spans in order, each marked
// as a match or not (the reference's Pattern::find_matches).
class Pattern {
 public:
  virtual ~Pattern() = default;
  virtual absl::Status FindMatches(std::string_view text, std::vector<MatchSpan>& out) const = 0;
};

// Regex pattern; every regex match is one matched span.
std::unique_ptr<Pattern> MakeRegexPattern(std::shared_ptr<const Regex> regex);
// Literal string; the reference escapes it into a regex, so the same iteration rules apply.
std::unique_ptr<Pattern> MakeLiteralPattern(std::string literal);
// Each character for which `predicate` holds is a matched span of its own.
std::unique_ptr<Pattern> MakeCharPredicatePattern(std::function<bool(char32_t)> predicate);
// The reference Whitespace pre-tokenizer's `\w+|[^\w\s]+` (Rust regex crate classes).
std::unique_ptr<Pattern> MakeWordOrSymbolRunPattern();
// Flips is_match of another pattern's spans.
std::unique_ptr<Pattern> MakeInvertedPattern(std::unique_ptr<Pattern> inner);

// The pattern member of Split, Replace: {"String": "..."} or {"Regex": "..."}.
struct PatternSpec {
  bool is_regex = false;
  std::string text;
};
absl::StatusOr<PatternSpec> ParsePatternSpec(const Json& value, std::string_view where);
// Builds the matcher of a spec; regex compile errors name `where`.
absl::StatusOr<std::unique_ptr<Pattern>> MakePattern(const PatternSpec& spec,
                                                     std::string_view where);

}  // namespace ropewire::tokenizer
