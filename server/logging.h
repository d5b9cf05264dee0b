// The server's logs: spdlog's default logger for events, and an access log with one line per
// finished ropewire.v1.Inference call, both on stdout in one format (--log-format): `text`
// (a timestamp, the level, the message) or `json` (one JSON object per line, so that a log
// collector can parse every line). Caller-supplied strings (request ids, stop strings, peers) are
// escaped in both, so a newline in a request id cannot forge a log line.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/call_record.h"
#include "spdlog/logger.h"

namespace ropewire::server {

enum class LogFormat { kText, kJson };

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// Sets spdlog's default logger (level and format) and creates the access log's logger on the
// same sink. Also routes gRPC's messages into spdlog, and protobuf's (e.g. about a request that
// does not parse, which the client hears about anyway) at debug level, so every line of the
// output has the one format.
absl::Status ConfigureLogging(const std::string& level, LogFormat format);

// `text` with every byte a terminal or log reader could take for structure escaped: quotes and
// backslashes, control characters (\n, \t, \xNN), and the Unicode line separators U+0085,
// U+2028 and U+2029 (\u0085 ...). Bytes that are not UTF-8 come out as \xNN.
std::string EscapeForLog(absl::string_view text);

// One access-log line's message (what follows the timestamp and level).
std::string FormatAccessText(const CallRecord& record);
// The same as members of a JSON object, without the braces: "\"log\":\"access\",\"method\":...".
std::string FormatAccessJsonMembers(const CallRecord& record);

class AccessLog {
 public:
  // Writes through the logger ConfigureLogging created (a plain stdout logger before that).
  explicit AccessLog(LogFormat format);
  void Write(const CallRecord& record);

 private:
  LogFormat format_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace ropewire::server
