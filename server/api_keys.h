// API keys (--api-key-file): every ropewire.v1.Inference call must carry
// `authorization: Bearer <key>` metadata with one of them; grpc.health.v1 and reflection stay
// open. Keys are held only as SHA-256 digests and compared in constant time against every key,
// so neither a key's content nor its length leaks through timing; a key is never logged, only
// its name.
//
// File format: one key per line, either `KEY` or `NAME:KEY` (the first colon splits); blank
// lines and lines starting with `#` are skipped. Names are 1 to 64 of [A-Za-z0-9._-]; a key
// without one is named `keyN`, N counting keys from 1. Keys are 1 to 4096 printable ASCII
// characters without spaces.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ropewire::server {

class ApiKeys {
 public:
  // Parses a key file's text; `source` names it in errors (which never quote a key).
  static absl::StatusOr<ApiKeys> Parse(absl::string_view text, absl::string_view source);
  static absl::StatusOr<ApiKeys> Load(const std::string& path);

  // The name of the key that the `authorization` metadata value carries. UNAUTHENTICATED when
  // it is missing (`authorization` null), not `Bearer <key>`, or no key matches; the message
  // never repeats what the caller sent.
  absl::StatusOr<std::string> Authenticate(const absl::string_view* authorization) const;

  size_t size() const { return keys_.size(); }

 private:
  struct Key {
    std::string name;
    std::array<uint8_t, 32> digest;
  };
  std::vector<Key> keys_;
};

// The keys a running server checks against, replaced as a whole when the file is read again
// (SIGHUP). Without a file every call is let through, unnamed.
class Authenticator {
 public:
  // `path` empty: no keys, no checks.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const std::string& path);

  // Reads the file again. On an error the keys in use stay, so a broken edit never locks
  // every caller out (or lets every caller in).
  absl::Status Reload();

  // The key's name ("" without keys), or UNAUTHENTICATED. Thread-safe.
  absl::StatusOr<std::string> Authenticate(const absl::string_view* authorization) const;
  bool enabled() const { return !path_.empty(); }
  size_t num_keys() const;

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const ApiKeys> keys_;
};

}  // namespace ropewire::server
