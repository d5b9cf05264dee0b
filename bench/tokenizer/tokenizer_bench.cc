// ropewire-bench-tokenizer: single-thread encode throughput of a tokenizer.json.
//
//   ropewire-bench-tokenizer --tokenizer PATH --documents FILE.json [--runs N] [--no-special]
//
// FILE.json is a JSON array of strings; each is encoded with one Encode call, one after the
// other on one thread, after an untimed warm-up pass (the reference library also caches
// words, so both sides are measured warm). Prints one JSON object: bytes, tokens, an FNV-1a
// hash of all ids (to check the ids against another implementation), and the seconds and MB/s
// of each timed run.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"

namespace {

using ropewire::tokenizer::Tokenizer;

struct Options {
  std::string tokenizer;
  std::string documents;
  int runs = 5;
  bool add_special_tokens = true;
};

bool ParseArgs(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--tokenizer" && has_value) {
      options.tokenizer = argv[++i];
    } else if (arg == "--documents" && has_value) {
      options.documents = argv[++i];
    } else if (arg == "--runs" && has_value) {
      options.runs = std::atoi(argv[++i]);
    } else if (arg == "--no-special") {
      options.add_special_tokens = false;
    } else {
      return false;
    }
  }
  return !options.tokenizer.empty() && !options.documents.empty() && options.runs > 0;
}

// FNV-1a over the ids as little-endian 32-bit values, continued across documents.
uint64_t HashIds(const std::vector<int32_t>& ids, uint64_t hash) {
  for (int32_t id : ids) {
    const auto value = static_cast<uint32_t>(id);
    for (int shift = 0; shift < 32; shift += 8) {
      hash ^= (value >> shift) & 0xFF;
      hash *= 1099511628211ULL;
    }
  }
  return hash;
}

struct Pass {
  double seconds = 0;
  size_t tokens = 0;
  uint64_t hash = 14695981039346656037ULL;
};

bool EncodeAll(const Tokenizer& tokenizer, const std::vector<std::string>& documents,
               bool add_special_tokens, Pass& pass) {
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& document : documents) {
    auto ids = tokenizer.Encode(document, add_special_tokens);
    if (!ids.ok()) {
      std::cerr << "encode failed: " << ids.status() << "\n";
      return false;
    }
    pass.tokens += ids->size();
    pass.hash = HashIds(*ids, pass.hash);
  }
  pass.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, options)) {
    std::cerr << "usage: ropewire-bench-tokenizer --tokenizer PATH --documents FILE.json "
                 "[--runs N] [--no-special]\n";
    return 2;
  }
  auto tokenizer = Tokenizer::FromFile(options.tokenizer);
  if (!tokenizer.ok()) {
    std::cerr << tokenizer.status() << "\n";
    return 1;
  }
  std::ifstream file(options.documents);
  std::stringstream text;
  text << file.rdbuf();
  const auto documents = nlohmann::json::parse(text.str()).get<std::vector<std::string>>();
  size_t bytes = 0;
  for (const std::string& document : documents) bytes += document.size();

  Pass warm_up;
  if (!EncodeAll(**tokenizer, documents, options.add_special_tokens, warm_up)) return 1;
  nlohmann::json result = {{"bytes", bytes},
                           {"documents", documents.size()},
                           {"tokens", warm_up.tokens},
                           {"ids_fnv1a", warm_up.hash},
                           {"seconds", nlohmann::json::array()},
                           {"mb_per_s", nlohmann::json::array()}};
  for (int run = 0; run < options.runs; ++run) {
    Pass pass;
    if (!EncodeAll(**tokenizer, documents, options.add_special_tokens, pass)) return 1;
    result["seconds"].push_back(pass.seconds);
    result["mb_per_s"].push_back(static_cast<double>(bytes) / 1e6 / pass.seconds);
  }
  std::cout << result.dump() << "\n";
  return 0;
}
