// Typed, error-reporting access to config-style JSON objects. Every error names the source file
// and the key, so a malformed model directory says exactly what is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace ropewire::model {

class JsonReader {
 public:
  JsonReader(const nlohmann::json& object, std::string source)
      : object_(object), source_(std::move(source)) {}

  bool Has(const std::string& key) const;  // present and not null

  absl::StatusOr<int64_t> Int(const std::string& key) const;
  absl::StatusOr<int64_t> Int(const std::string& key, int64_t fallback) const;
  absl::StatusOr<double> Double(const std::string& key) const;
  absl::StatusOr<double> Double(const std::string& key, double fallback) const;
  absl::StatusOr<bool> Bool(const std::string& key, bool fallback) const;
  absl::StatusOr<std::string> String(const std::string& key) const;
  absl::StatusOr<std::string> String(const std::string& key, const std::string& fallback) const;
  // A positive integer key, e.g. a dimension.
  absl::StatusOr<int64_t> PositiveInt(const std::string& key) const;
  absl::StatusOr<int64_t> PositiveInt(const std::string& key, int64_t fallback) const;

  const nlohmann::json& object() const { return object_; }
  const std::string& source() const { return source_; }
  absl::Status Error(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json& object_;
  std::string source_;
};

// Parses a JSON file into `out`; errors name the file (missing, unreadable, or the parse error).
absl::Status ReadJsonFile(const std::string& path, nlohmann::json* out);

}  // namespace ropewire::model
