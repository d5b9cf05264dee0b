// ropewire-tokenize: encode stdin with a tokenizer.json or a GGUF file's tokenizer, or decode a
// JSON array of ids.
//
//   ropewire-tokenize PATH [--decode] [--no-special]
//
// PATH is a tokenizer.json file, a model directory holding one, or a .gguf file. Encoding reads
// all of stdin as UTF-8 (byte for byte, including a trailing newline) and prints the ids as a
// JSON array.
// --decode reads a JSON array of ids and prints the text exactly, with no newline added.
// --no-special: when encoding, do not add BOS/EOS; when decoding, leave out special tokens.
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using ropewire::tokenizer::Tokenizer;

constexpr char kUsage[] =
    "usage: ropewire-tokenize PATH/tokenizer.json|MODEL.gguf [--decode] [--no-special]\n"
    "  encodes stdin (UTF-8) and prints the token ids as a JSON array;\n"
    "  --decode     read a JSON array of ids on stdin and print the text\n"
    "  --no-special do not add BOS/EOS (encode) / skip special tokens (decode)\n";

struct Options {
  std::string path;
  bool decode = false;
  bool no_special = false;
};

bool ParseArgs(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--decode") {
      options.decode = true;
    } else if (arg == "--no-special") {
      options.no_special = true;
    } else if (arg == "-h" || arg == "--help") {
      return false;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "ropewire-tokenize: unknown option " << arg << "\n";
      return false;
    } else if (options.path.empty()) {
      options.path = arg;
    } else {
      std::cerr << "ropewire-tokenize: more than one path given\n";
      return false;
    }
  }
  return !options.path.empty();
}

int Fail(const std::string& message) {
  std::cerr << "ropewire-tokenize: " << message << "\n";
  return 1;
}

int Encode(const Tokenizer& tokenizer, const std::string& input, bool add_special_tokens) {
  auto ids = tokenizer.Encode(input, add_special_tokens);
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  std::cout << nlohmann::json(*ids).dump() << "\n";
  return 0;
}

int Decode(const Tokenizer& tokenizer, const std::string& input, bool skip_special_tokens) {
  nlohmann::json json = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return Fail("--decode expects a JSON array of token ids on stdin");
  }
  std::vector<int32_t> ids;
  for (const nlohmann::json& id : json) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return Fail("--decode: every element must be a non-negative integer id, got " + id.dump());
    }
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  auto text = tokenizer.Decode(ids, skip_special_tokens);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  std::cout << *text;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, options)) {
    std::cerr << kUsage;
    return 2;
  }
  std::string path = options.path;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    path = (std::filesystem::path(path) / "tokenizer.json").string();
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (path.ends_with(".gguf")) {
    auto model_tokenizer = ropewire::tokenizer::LoadGgufTokenizer(path);
    if (!model_tokenizer.ok()) return Fail(std::string(model_tokenizer.status().message()));
    tokenizer = std::move(model_tokenizer->tokenizer);
  } else {
    auto loaded = Tokenizer::FromFile(path);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    tokenizer = *std::move(loaded);
  }
  const std::string input{std::istreambuf_iterator<char>(std::cin),
                          std::istreambuf_iterator<char>()};
  if (std::cin.bad()) return Fail("reading stdin failed");
  if (options.decode) return Decode(*tokenizer, input, options.no_special);
  return Encode(*tokenizer, input, !options.no_special);
}
