#include "tests/tokenizer/fixtures.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ropewire::tokenizer::testing {
namespace {

std::optional<std::string> OptionalString(const Json& value) {
  if (value.is_null()) return std::nullopt;
  return value.get<std::string>();
}

// Loading fixtures is test setup: failures throw so the test reports them and stops.
std::unique_ptr<Tokenizer> OrThrow(absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer) {
  if (!tokenizer.ok()) throw std::runtime_error(std::string(tokenizer.status().message()));
  return *std::move(tokenizer);
}

}  // namespace

std::string FixturesDir() {
  return std::string(ROPEWIRE_SOURCE_DIR) + "/tests/fixtures/tokenizers";
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::vector<std::string> ReferenceNames() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(FixturesDir() + "/reference")) {
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Reference LoadReference(const std::string& name) {
  const Json json = Json::parse(ReadFile(FixturesDir() + "/reference/" + name + ".json"));
  Reference reference;
  reference.name = json.at("name").get<std::string>();
  reference.base = json.at("base").get<std::string>();
  reference.overrides = json.at("overrides");
  for (const Json& item : json.at("cases")) {
    reference.cases.push_back(
        {item.at("text").get<std::string>(), item.at("ids").get<std::vector<int32_t>>(),
         item.at("ids_no_special").get<std::vector<int32_t>>(), OptionalString(item.at("decoded")),
         OptionalString(item.at("decoded_skip_special"))});
  }
  for (const Json& item : json.at("slices")) {
    reference.slices.push_back({item.at("ids").get<std::vector<int32_t>>(),
                                OptionalString(item.at("decoded")),
                                OptionalString(item.at("decoded_skip_special"))});
  }
  return reference;
}

Json ReferenceTokenizerJson(const Reference& reference) {
  Json json = Json::parse(ReadFile(FixturesDir() + "/" + reference.base + "/tokenizer.json"));
  for (auto it = reference.overrides.begin(); it != reference.overrides.end(); ++it) {
    // "model.byte_fallback" replaces one member of a section, "decoder" a whole section.
    Json* target = &json;
    std::string key = it.key();
    for (size_t dot; (dot = key.find('.')) != std::string::npos; key = key.substr(dot + 1)) {
      target = &(*target)[key.substr(0, dot)];
    }
    (*target)[key] = it.value();
  }
  return json;
}

std::unique_ptr<Tokenizer> LoadReferenceTokenizer(const Reference& reference) {
  return OrThrow(Tokenizer::FromJson(ReferenceTokenizerJson(reference), reference.name));
}

std::unique_ptr<Tokenizer> LoadBaseTokenizer(const std::string& base) {
  return OrThrow(Tokenizer::FromFile(FixturesDir() + "/" + base + "/tokenizer.json"));
}

}  // namespace ropewire::tokenizer::testing
