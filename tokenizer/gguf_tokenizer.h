// The tokenizer a GGUF file's metadata describes, built from the same components tokenizer.json
// gives, so a GGUF model encodes and decodes with the code its Hugging Face sibling uses.
//
// tokenizer.ggml.model:
//   "gpt2"   byte-level BPE: tokens, merges ("left right"), and the pre-tokenizer named by
//            tokenizer.ggml.pre, with llama.cpp's meaning (its regexes per name, e.g. "smollm":
//            digits split one by one before the GPT-2 regex); a name ropewire does not know is an
//            error naming it. Without a pre key: the GPT-2 regex.
//   "llama"  SentencePiece-style BPE with byte fallback: tokens and scores (merges, when the file
//            has none, derived from the scores as transformers derives them), Metaspace with
//            tokenizer.ggml.add_space_prefix (default true).
// Token types: control tokens (3) become special added tokens, user-defined ones (4) plain added
// tokens, both matched whole in the text. The rest follows transformers' GGUF conversion.
//
// Config: BOS/EOS/pad ids from tokenizer.ggml.*_token_id (eot and eom ids end generation too,
// as in llama.cpp); add_bos_token (default true for "llama", false otherwise) and
// add_eos_token decide the post-processor; tokenizer.chat_template is kept verbatim.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gguf/gguf_file.h"
#include "tokenizer/json_util.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::tokenizer {

// The tokenizer.json the metadata stands for. Errors name the file and the metadata key.
absl::StatusOr<Json> GgufTokenizerJson(const gguf::Metadata& metadata);

// Tokenizer and its config from an opened GGUF file.
absl::StatusOr<ModelTokenizer> LoadGgufTokenizer(const gguf::GgufFile& file);
// The same from a path (the file is memory-mapped only while the tokenizer is built).
absl::StatusOr<ModelTokenizer> LoadGgufTokenizer(const std::string& path);

}  // namespace ropewire::tokenizer
