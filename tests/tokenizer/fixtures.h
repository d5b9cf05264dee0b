// Access to the tokenizer fixtures written by tools/make_tokenizer_fixtures.py: the trained
// tokenizer.json files and the reference outputs of the `tokenizers` library.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace ropewire::tokenizer::testing {

std::string FixturesDir();  // tests/fixtures/tokenizers

struct ReferenceCase {
  std::string text;
  std::vector<int32_t> ids;             // encode with special tokens
  std::vector<int32_t> ids_no_special;  // encode without
  std::optional<std::string> decoded;   // decode(ids), skip_special_tokens=false (null if the
  std::optional<std::string> decoded_skip_special;  // reference panicked)
};

struct ReferenceSlice {  // decodes of arbitrary id sequences
  std::vector<int32_t> ids;
  std::optional<std::string> decoded;
  std::optional<std::string> decoded_skip_special;
};

struct Reference {
  std::string name;
  std::string base;  // directory of the tokenizer.json the overrides apply to
  Json overrides;
  std::vector<ReferenceCase> cases;
  std::vector<ReferenceSlice> slices;
};

// Names of all reference files (base tokenizers and variants), sorted.
std::vector<std::string> ReferenceNames();
Reference LoadReference(const std::string& name);
// The tokenizer.json of `base` with the reference's overrides applied, as the tool did.
Json ReferenceTokenizerJson(const Reference& reference);
std::unique_ptr<Tokenizer> LoadReferenceTokenizer(const Reference& reference);
// A base tokenizer as shipped (tests/fixtures/tokenizers/<base>/tokenizer.json).
std::unique_ptr<Tokenizer> LoadBaseTokenizer(const std::string& base);

std::string ReadFile(const std::string& path);

}  // namespace ropewire::tokenizer::testing
