#include "model/json_reader.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ropewire::model {

bool JsonReader::Has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

absl::Status JsonReader::Error(const std::string& key, const std::string& what) const {
  return absl::InvalidArgumentError(absl::StrCat(source_, ": key \"", key, "\" ", what));
}

absl::StatusOr<int64_t> JsonReader::Int(const std::string& key) const {
  if (!Has(key)) return Error(key, "is missing");
  const auto& value = object_.at(key);
  if (value.is_number_integer() || value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  return Error(key, absl::StrCat("must be an integer, got ", value.dump()));
}

absl::StatusOr<int64_t> JsonReader::Int(const std::string& key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return Int(key);
}

absl::StatusOr<double> JsonReader::Double(const std::string& key) const {
  if (!Has(key)) return Error(key, "is missing");
  const auto& value = object_.at(key);
  if (!value.is_number()) return Error(key, absl::StrCat("must be a number, got ", value.dump()));
  return value.get<double>();
}

absl::StatusOr<double> JsonReader::Double(const std::string& key, double fallback) const {
  if (!Has(key)) return fallback;
  return Double(key);
}

absl::StatusOr<bool> JsonReader::Bool(const std::string& key, bool fallback) const {
  if (!Has(key)) return fallback;
  const auto& value = object_.at(key);
  if (!value.is_boolean())
    return Error(key, absl::StrCat("must be true or false, got ", value.dump()));
  return value.get<bool>();
}

absl::StatusOr<std::string> JsonReader::String(const std::string& key) const {
  if (!Has(key)) return Error(key, "is missing");
  const auto& value = object_.at(key);
  if (!value.is_string()) return Error(key, absl::StrCat("must be a string, got ", value.dump()));
  return value.get<std::string>();
}

absl::StatusOr<std::string> JsonReader::String(const std::string& key,
                                               const std::string& fallback) const {
  if (!Has(key)) return fallback;
  return String(key);
}

absl::StatusOr<int64_t> JsonReader::PositiveInt(const std::string& key) const {
  auto value = Int(key);
  if (value.ok() && *value <= 0) return Error(key, absl::StrCat("must be positive, got ", *value));
  return value;
}

absl::StatusOr<int64_t> JsonReader::PositiveInt(const std::string& key, int64_t fallback) const {
  if (!Has(key)) return fallback;
  return PositiveInt(key);
}

absl::Status ReadJsonFile(const std::string& path, nlohmann::json* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  std::stringstream text;
  text << in.rdbuf();
  *out = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) {
    // Re-parse with exceptions only to get the position of the error for the message.
    try {
      const nlohmann::json reparsed = nlohmann::json::parse(text.str());  // throws here
      (void)reparsed;
    } catch (const nlohmann::json::parse_error& e) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", e.what()));
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  }
  return absl::OkStatus();
}

}  // namespace ropewire::model
