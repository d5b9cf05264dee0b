// Normalizers of tokenizer.json: text-to-text rewrites applied before pre-tokenization.
//
// Supported: Sequence, NFC, NFD, NFKC, NFKD (ICU), Lowercase, Prepend, Replace, Strip,
// StripAccents, ByteLevel. Anything else (BertNormalizer, Precompiled, Nmt, ...) is rejected
// at load time with an error naming it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"

namespace ropewire::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites valid UTF-8 `text` in place.
  virtual absl::Status Normalize(std::string& text) const = 0;
};

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json,
                                                            std::string_view where);

}  // namespace ropewire::tokenizer
