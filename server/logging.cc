#include "server/logging.h"

#include <cstdio>

#include <grpc/support/log.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/status_names.h"
#include "server/utf8.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

constexpr char kAccessLoggerName[] = "access";
constexpr char kTextPattern[] = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v";
// %* is the message escaped as a JSON string's contents (JsonEscapedMessage below).
constexpr char kJsonPattern[] = R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})";
// The access log's message is already a list of JSON members.
constexpr char kJsonAccessPattern[] = R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%v})";

// Code points that some log readers and terminals treat as line breaks.
bool IsLineBreakLike(uint32_t code_point) {
  return (code_point >= 0x80 && code_point <= 0x9f) || code_point == 0x2028 || code_point == 0x2029;
}

void AppendJsonEscaped(absl::string_view text, std::string* out) {
  uint32_t code_point = 0;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const int length = Utf8SequenceAt(text, i, &code_point);
    if (length == 0) {
      out->append("\\ufffd");  // not UTF-8: the replacement character keeps the line valid JSON
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (code_point < 0x20 || code_point == 0x7f || IsLineBreakLike(code_point)) {
      absl::StrAppendFormat(out, "\\u%04x", code_point);
    } else {
      out->append(text.data() + i, static_cast<size_t>(length));
    }
    i += static_cast<size_t>(length);
  }
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  AppendJsonEscaped(text, &out);
  out.push_back('"');
  return out;
}

class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    AppendJsonEscaped(absl::string_view(msg.payload.data(), msg.payload.size()), &escaped);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(const char* pattern) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonEscapedMessage>('*').set_pattern(pattern);
  return formatter;
}

void ProtobufToSpdlog(google::protobuf::LogLevel level, const char* filename, int line,
                      const std::string& message) {
  (void)level;
  spdlog::debug("protobuf ({}:{}): {}", filename, line, message);
}

// gRPC's own messages (below its default verbosity, only errors) in the same stream and format.
void GrpcToSpdlog(gpr_log_func_args* args) {
  const spdlog::level::level_enum level =
      args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
      : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                : spdlog::level::debug;
  spdlog::log(level, "grpc ({}:{}): {}", args->file, args->line, args->message);
}

std::string Millis(const std::optional<double>& seconds) {
  return seconds ? absl::StrFormat("%.3f", *seconds * 1e3) : "-";
}

std::string JsonMillis(const std::optional<double>& seconds) {
  return seconds ? absl::StrFormat("%.3f", *seconds * 1e3) : "null";
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("--log-format must be text or json, got ", name));
}

absl::Status ConfigureLogging(const std::string& level, LogFormat format) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-level must be trace, debug, info, warn, error or off, got ", level));
  }
  // spdlog formats per sink, so each logger has a sink of its own; both write stdout under
  // spdlog's one console mutex, so their lines never interleave. No colors in JSON.
  spdlog::sink_ptr main_sink;
  if (format == LogFormat::kJson) {
    main_sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    main_sink = std::make_shared<spdlog::sinks::stdout_color_sink_mt>();
  }
  auto main_logger = std::make_shared<spdlog::logger>("ropewire", main_sink);
  main_logger->set_formatter(
      MakeFormatter(format == LogFormat::kJson ? kJsonPattern : kTextPattern));
  main_logger->set_level(parsed);
  spdlog::set_default_logger(main_logger);

  auto access = std::make_shared<spdlog::logger>(kAccessLoggerName,
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  access->set_formatter(
      MakeFormatter(format == LogFormat::kJson ? kJsonAccessPattern : kTextPattern));
  access->set_level(spdlog::level::info);
  spdlog::drop(kAccessLoggerName);
  spdlog::register_logger(access);
  google::protobuf::SetLogHandler(&ProtobufToSpdlog);
  gpr_set_log_function(&GrpcToSpdlog);
  return absl::OkStatus();
}

std::string EscapeForLog(absl::string_view text) {
  std::string out;
  uint32_t code_point = 0;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const int length = Utf8SequenceAt(text, i, &code_point);
    if (length == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", byte);
      ++i;
      continue;
    }
    if (byte == '"' || byte == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(byte));
    } else if (byte == '\n') {
      out.append("\\n");
    } else if (byte == '\r') {
      out.append("\\r");
    } else if (byte == '\t') {
      out.append("\\t");
    } else if (code_point < 0x20 || code_point == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", code_point);
    } else if (IsLineBreakLike(code_point)) {
      absl::StrAppendFormat(&out, "\\u%04x", code_point);
    } else {
      out.append(text.data() + i, static_cast<size_t>(length));
    }
    i += static_cast<size_t>(length);
  }
  return out;
}

std::string FormatAccessText(const CallRecord& r) {
  std::string line = absl::StrCat(
      "access method=", r.method, " request_id=\"", EscapeForLog(r.request_id), "\" peer=\"",
      EscapeForLog(r.peer), "\" key=\"", EscapeForLog(r.key_name),
      "\" code=", GrpcStatusCodeName(r.code),
      " finish=", r.finish_reason.empty() ? "-" : r.finish_reason,
      " prompt_tokens=", r.prompt_tokens, " cached_tokens=", r.cached_prompt_tokens,
      " completion_tokens=", r.completion_tokens, " queue_ms=", Millis(r.queue_seconds),
      " ttft_ms=", Millis(r.ttft_seconds), " e2e_ms=", Millis(r.e2e_seconds));
  if (r.code != grpc::StatusCode::OK)
    absl::StrAppend(&line, " error=\"", EscapeForLog(r.error), "\"");
  return line;
}

std::string FormatAccessJsonMembers(const CallRecord& r) {
  std::string members = absl::StrCat(
      "\"log\":\"access\",\"method\":", JsonString(r.method),
      ",\"request_id\":", JsonString(r.request_id), ",\"peer\":", JsonString(r.peer),
      ",\"key\":", JsonString(r.key_name), ",\"code\":\"", GrpcStatusCodeName(r.code),
      "\",\"finish_reason\":", r.finish_reason.empty() ? "null" : JsonString(r.finish_reason),
      ",\"prompt_tokens\":", r.prompt_tokens, ",\"cached_tokens\":", r.cached_prompt_tokens,
      ",\"completion_tokens\":", r.completion_tokens, ",\"queue_ms\":", JsonMillis(r.queue_seconds),
      ",\"ttft_ms\":", JsonMillis(r.ttft_seconds), ",\"e2e_ms\":", JsonMillis(r.e2e_seconds));
  if (r.code != grpc::StatusCode::OK) absl::StrAppend(&members, ",\"error\":", JsonString(r.error));
  return members;
}

AccessLog::AccessLog(LogFormat format) : format_(format), logger_(spdlog::get(kAccessLoggerName)) {
  if (!logger_) {
    logger_ = std::make_shared<spdlog::logger>(kAccessLoggerName,
                                               std::make_shared<spdlog::sinks::stdout_sink_mt>());
    logger_->set_formatter(
        MakeFormatter(format == LogFormat::kJson ? kJsonAccessPattern : kTextPattern));
  }
}

void AccessLog::Write(const CallRecord& record) {
  logger_->info(format_ == LogFormat::kJson ? FormatAccessJsonMembers(record)
                                            : FormatAccessText(record));
}

}  // namespace ropewire::server
