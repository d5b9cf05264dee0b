// The Q/K row order of llama.cpp's converter and its inverse, as row indices.
//
// For `llama` models the converter reorders the output rows of attn_q (per query head) and
// attn_k (per KV head) so that Hugging Face's rotate-half pairs (i, i + d/2) become adjacent
// pairs (2i, 2i + 1): within each head of d rows, GGUF row 2i holds HF row i and GGUF row 2i + 1
// holds HF row i + d/2. Serving the rows in HF order with the rotate-half (NeoX) RoPE computes
// the model; so does serving the GGUF rows unchanged with the interleaved (GPT-J) RoPE.
//
// Only whole rows move, so the same order applies to any row-major storage, quantized blocks
// included (a block never spans two rows: blocks run along the input dimension).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ropewire::model {

// For each row r of the HF-ordered matrix, the GGUF row that holds it (num_heads * head_dim
// entries). head_dim must be even.
std::vector<int64_t> HfRowsFromGgufQk(int64_t num_heads, int64_t head_dim);
// The converter's direction: for each GGUF row, the HF row it came from.
std::vector<int64_t> GgufRowsFromHfQk(int64_t num_heads, int64_t head_dim);

// dst row r = src row order[r]; rows of `row_bytes` bytes.
void GatherRows(const uint8_t* src, uint64_t row_bytes, std::span<const int64_t> order,
                uint8_t* dst);

}  // namespace ropewire::model
