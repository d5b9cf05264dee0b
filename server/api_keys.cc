#include "server/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ropewire::server {
namespace {

constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxNameBytes = 64;

std::array<uint8_t, 32> Digest(absl::string_view key) {
  std::array<uint8_t, 32> digest;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest.data());
  return digest;
}

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

bool IsValidKey(absl::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

absl::Status Unauthenticated(absl::string_view why) { return absl::UnauthenticatedError(why); }

}  // namespace

absl::StatusOr<ApiKeys> ApiKeys::Parse(absl::string_view text, absl::string_view source) {
  ApiKeys keys;
  std::set<std::string> names;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::string name;
    absl::string_view key = line;
    if (const size_t colon = line.find(':'); colon != absl::string_view::npos) {
      name = std::string(line.substr(0, colon));
      key = line.substr(colon + 1);
      if (!IsValidName(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ":", line_number,
                         ": a key name must be 1 to 64 of the characters A-Z a-z 0-9 . _ -"));
      }
    } else {
      name = absl::StrCat("key", keys.keys_.size() + 1);
    }
    if (!IsValidKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number,
                       ": a key must be 1 to 4096 printable ASCII characters without spaces"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": the key name \"", name, "\" is used twice"));
    }
    keys.keys_.push_back({name, Digest(key)});
  }
  if (keys.keys_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": holds no keys (one per line, KEY or NAME:KEY)"));
  }
  return keys;
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the API key file"));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<std::string> ApiKeys::Authenticate(const absl::string_view* authorization) const {
  if (authorization == nullptr) {
    return Unauthenticated("this server needs an API key: send `authorization: Bearer <key>`");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(value, kScheme)) {
    return Unauthenticated("the authorization metadata must be `Bearer <key>`");
  }
  const absl::string_view presented =
      absl::StripLeadingAsciiWhitespace(value.substr(kScheme.size()));
  const std::array<uint8_t, 32> digest = Digest(presented);
  // Every key is compared, with no early exit, so the time taken does not depend on which key
  // (if any) matched.
  const Key* match = nullptr;
  for (const Key& key : keys_) {
    const bool equal = CRYPTO_memcmp(key.digest.data(), digest.data(), digest.size()) == 0;
    if (equal) match = &key;
  }
  if (match == nullptr) return Unauthenticated("the API key is not valid");
  return match->name;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(const std::string& path) {
  auto authenticator = std::make_unique<Authenticator>();
  authenticator->path_ = path;
  if (path.empty()) return authenticator;
  if (absl::Status loaded = authenticator->Reload(); !loaded.ok()) return loaded;
  return authenticator;
}

absl::Status Authenticator::Reload() {
  if (path_.empty()) return absl::OkStatus();
  absl::StatusOr<ApiKeys> keys = ApiKeys::Load(path_);
  if (!keys.ok()) return keys.status();
  auto shared = std::make_shared<const ApiKeys>(std::move(*keys));
  std::lock_guard<std::mutex> lock(mu_);
  keys_ = std::move(shared);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Authenticator::Authenticate(
    const absl::string_view* authorization) const {
  if (path_.empty()) return std::string();
  std::shared_ptr<const ApiKeys> keys;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keys = keys_;
  }
  return keys->Authenticate(authorization);
}

size_t Authenticator::num_keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_ ? keys_->size() : 0;
}

}  // namespace ropewire::server
