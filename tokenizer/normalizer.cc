#include "tokenizer/normalizer.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

absl::Status IcuError(std::string_view what, UErrorCode code) {
  return absl::InternalError(Concat(what, ": ", u_errorName(code)));
}

absl::StatusOr<std::u16string> ToUtf16(std::string_view text) {
  std::u16string out(text.size(), u'\0');  // UTF-16 never needs more units than UTF-8 bytes
  int32_t length = 0;
  UErrorCode error = U_ZERO_ERROR;
  u_strFromUTF8(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
                static_cast<int32_t>(text.size()), &error);
  if (U_FAILURE(error)) return IcuError("UTF-8 to UTF-16", error);
  out.resize(length);
  return out;
}

absl::StatusOr<std::string> ToUtf8(const std::u16string& text) {
  std::string out(text.size() * 3, '\0');
  int32_t length = 0;
  UErrorCode error = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &length, text.data(),
              static_cast<int32_t>(text.size()), &error);
  if (U_FAILURE(error)) return IcuError("UTF-16 to UTF-8", error);
  out.resize(length);
  return out;
}

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status Normalize(std::string& text) const override {
    for (const auto& step : steps_) {
      if (absl::Status status = step->Normalize(text); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// NFC, NFD, NFKC, NFKD through ICU. ASCII is invariant under all four, which keeps the common
// case free of conversions.
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(const UNormalizer2* form) : form_(form) {}
  absl::Status Normalize(std::string& text) const override {
    if (IsAscii(text)) return absl::OkStatus();
    auto utf16 = ToUtf16(text);
    if (!utf16.ok()) return utf16.status();
    UErrorCode error = U_ZERO_ERROR;
    const int32_t quick =
        unorm2_spanQuickCheckYes(form_, utf16->data(), static_cast<int32_t>(utf16->size()), &error);
    if (U_SUCCESS(error) && quick == static_cast<int32_t>(utf16->size())) {
      return absl::OkStatus();
    }
    error = U_ZERO_ERROR;
    std::u16string normalized(utf16->size() * 4 + 16, u'\0');
    int32_t length =
        unorm2_normalize(form_, utf16->data(), static_cast<int32_t>(utf16->size()),
                         normalized.data(), static_cast<int32_t>(normalized.size()), &error);
    if (error == U_BUFFER_OVERFLOW_ERROR) {
      error = U_ZERO_ERROR;
      normalized.resize(length);
      length = unorm2_normalize(form_, utf16->data(), static_cast<int32_t>(utf16->size()),
                                normalized.data(), length, &error);
    }
    if (U_FAILURE(error)) return IcuError("Unicode normalization", error);
    normalized.resize(length);
    auto utf8 = ToUtf8(normalized);
    if (!utf8.ok()) return utf8.status();
    text = *std::move(utf8);
    return absl::OkStatus();
  }

 private:
  const UNormalizer2* form_;
};

// Per-character full lowercase mapping, like Rust's char::to_lowercase (no context rules such
// as final sigma; each character is mapped on its own).
class LowercaseNormalizer : public Normalizer {
 public:
  absl::Status Normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      const char32_t cp = NextCodePoint(text, pos);
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
        continue;
      }
      if (absl::Status status = AppendLowercase(cp, out); !status.ok()) return status;
    }
    text = std::move(out);
    return absl::OkStatus();
  }

 private:
  static absl::Status AppendLowercase(char32_t cp, std::string& out) {
    UChar source[2];
    int32_t source_length = 0;
    U16_APPEND_UNSAFE(source, source_length, static_cast<UChar32>(cp));
    UChar lowered[8];
    UErrorCode error = U_ZERO_ERROR;
    const int32_t length = u_strToLower(lowered, 8, source, source_length, "", &error);
    if (U_FAILURE(error)) return IcuError("lowercase", error);
    int32_t i = 0;
    while (i < length) {
      UChar32 c;
      U16_NEXT(lowered, i, length, c);
      AppendUtf8(static_cast<char32_t>(c), out);
    }
    return absl::OkStatus();
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  absl::Status Normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
    return absl::OkStatus();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::Status Normalize(std::string& text) const override {
    std::vector<MatchSpan> spans;
    if (absl::Status status = pattern_->FindMatches(text, spans); !status.ok()) return status;
    std::string out;
    out.reserve(text.size());
    for (const MatchSpan& span : spans) {
      if (span.is_match) {
        out.append(content_);
      } else {
        out.append(text, span.begin, span.end - span.begin);
      }
    }
    text = std::move(out);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  absl::Status Normalize(std::string& text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      size_t pos = 0;
      while (pos < text.size()) {
        size_t next = pos;
        if (!IsWhitespace(NextCodePoint(text, next))) break;
        pos = next;
      }
      begin = pos;
    }
    if (right_) {
      // Walk forward remembering where the trailing whitespace run starts.
      size_t pos = begin;
      size_t run_start = text.size();
      while (pos < text.size()) {
        const size_t here = pos;
        const bool space = IsWhitespace(NextCodePoint(text, pos));
        if (!space)
          run_start = text.size();
        else if (run_start == text.size())
          run_start = here;
      }
      end = std::max(begin, run_start);
    }
    text = text.substr(begin, end - begin);
    return absl::OkStatus();
  }

 private:
  bool left_;
  bool right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  absl::Status Normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t begin = pos;
      const char32_t cp = NextCodePoint(text, pos);
      if (!IsCombiningMark(cp)) out.append(text, begin, pos - begin);
    }
    text = std::move(out);
    return absl::OkStatus();
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  absl::Status Normalize(std::string& text) const override {
    std::string out;
    ByteLevelAlphabet::Get().Encode(text, out);
    text = std::move(out);
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Normalizer>> ParseSequence(const Json& json,
                                                          std::string_view where) {
  auto list = RequiredMember(json, "normalizers", where);
  if (!list.ok()) return list.status();
  const std::string list_where = JsonPath(where, "normalizers");
  if (!(*list)->is_array()) return JsonError(list_where, "expected an array");
  std::vector<std::unique_ptr<Normalizer>> steps;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = ParseNormalizer((**list)[i], JsonIndex(list_where, i));
    if (!step.ok()) return step.status();
    steps.push_back(*std::move(step));
  }
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}

absl::StatusOr<std::unique_ptr<Normalizer>> ParseUnicodeForm(std::string_view type,
                                                             std::string_view where) {
  UErrorCode error = U_ZERO_ERROR;
  const UNormalizer2* form = nullptr;
  if (type == "NFC") form = unorm2_getNFCInstance(&error);
  if (type == "NFD") form = unorm2_getNFDInstance(&error);
  if (type == "NFKC") form = unorm2_getNFKCInstance(&error);
  if (type == "NFKD") form = unorm2_getNFKDInstance(&error);
  if (form == nullptr || U_FAILURE(error)) {
    return JsonError(where, Concat("ICU has no ", type, " data: ", u_errorName(error)));
  }
  return std::make_unique<UnicodeNormalizer>(form);
}

absl::StatusOr<std::unique_ptr<Normalizer>> ParseReplace(const Json& json, std::string_view where) {
  auto pattern_json = RequiredMember(json, "pattern", where);
  if (!pattern_json.ok()) return pattern_json.status();
  auto spec = ParsePatternSpec(**pattern_json, JsonPath(where, "pattern"));
  if (!spec.ok()) return spec.status();
  auto pattern = MakePattern(*spec, JsonPath(where, "pattern"));
  if (!pattern.ok()) return pattern.status();
  auto content = GetString(json, "content", where);
  if (!content.ok()) return content.status();
  return std::make_unique<ReplaceNormalizer>(*std::move(pattern), *std::move(content));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json,
                                                            std::string_view where) {
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "Sequence") return ParseSequence(json, where);
  if (*type == "NFC" || *type == "NFD" || *type == "NFKC" || *type == "NFKD") {
    return ParseUnicodeForm(*type, where);
  }
  if (*type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (*type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (*type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (*type == "Prepend") {
    auto prefix = GetString(json, "prepend", where);
    if (!prefix.ok()) return prefix.status();
    return std::make_unique<PrependNormalizer>(*std::move(prefix));
  }
  if (*type == "Replace") return ParseReplace(json, where);
  if (*type == "Strip") {
    auto left = GetBool(json, "strip_left", where, true);
    if (!left.ok()) return left.status();
    auto right = GetBool(json, "strip_right", where, true);
    if (!right.ok()) return right.status();
    return std::make_unique<StripNormalizer>(*left, *right);
  }
  return UnsupportedComponent(where, "normalizer", *type);
}

}  // namespace ropewire::tokenizer
