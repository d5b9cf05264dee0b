#include "client/load_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/rpc_util.h"
#include "proto/status_names.h"

namespace ropewire::client {
namespace {

double Quantile(const std::vector<double>& sorted, double q) {
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double weight = rank - static_cast<double>(below);
  return sorted[below] * (1 - weight) + sorted[above] * weight;
}

std::string FormatDistributionRow(const std::string& name, const Distribution& d) {
  if (d.count == 0) return absl::StrFormat("  %-16s %10s\n", name, "n/a");
  return absl::StrFormat("  %-16s %10.3f %10.3f %10.3f %10.3f %10.3f %9d\n", name, d.mean * 1e3,
                         d.p50 * 1e3, d.p90 * 1e3, d.p99 * 1e3, d.max * 1e3, d.count);
}

nlohmann::json DistributionJson(const Distribution& d) {
  return {{"count", d.count},      {"mean_ms", d.mean * 1e3}, {"p50_ms", d.p50 * 1e3},
          {"p90_ms", d.p90 * 1e3}, {"p99_ms", d.p99 * 1e3},   {"max_ms", d.max * 1e3}};
}

}  // namespace

Distribution Summarize(std::vector<double> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.count = static_cast<int64_t>(values.size());
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  d.p50 = Quantile(values, 0.50);
  d.p90 = Quantile(values, 0.90);
  d.p99 = Quantile(values, 0.99);
  d.max = values.back();
  return d;
}

LoadReport BuildReport(const std::vector<RequestRecord>& records, double duration_s) {
  LoadReport report;
  report.duration_s = duration_s;
  report.requests = static_cast<int64_t>(records.size());
  std::vector<double> ttft, tpot, itl_message, itl_token, e2e;
  int64_t messages = 0;
  for (const RequestRecord& r : records) {
    const std::string code = GrpcStatusCodeName(r.code);
    ++report.status_counts[code];
    if (r.code != grpc::StatusCode::OK) {
      report.first_errors.emplace(code, r.error_message);
      continue;
    }
    ++report.ok;
    report.prompt_tokens += r.prompt_tokens;
    report.output_tokens += r.output_tokens;
    messages += r.messages;
    e2e.push_back(r.e2e_s);
    if (r.ttft_s >= 0) ttft.push_back(r.ttft_s);
    if (r.streamed && r.ttft_s >= 0 && r.output_tokens > 1)
      tpot.push_back((r.e2e_s - r.ttft_s) / (r.output_tokens - 1));
    for (size_t i = 0; i < r.gaps_s.size(); ++i) {
      itl_message.push_back(r.gaps_s[i]);
      const int tokens = std::max(1, r.gap_tokens[i]);
      for (int t = 0; t < tokens; ++t) itl_token.push_back(r.gaps_s[i] / tokens);
    }
  }
  if (duration_s > 0) {
    report.request_throughput = static_cast<double>(report.ok) / duration_s;
    report.output_token_throughput = static_cast<double>(report.output_tokens) / duration_s;
  }
  if (messages > 0)
    report.tokens_per_message = static_cast<double>(report.output_tokens) / messages;
  report.ttft = Summarize(std::move(ttft));
  report.tpot = Summarize(std::move(tpot));
  report.itl_message = Summarize(std::move(itl_message));
  report.itl_token = Summarize(std::move(itl_token));
  report.e2e = Summarize(std::move(e2e));
  return report;
}

std::string FormatReport(const LoadReport& r) {
  std::string text;
  absl::StrAppendFormat(&text, "requests:          %d (%d OK) in %.3f s\n", r.requests, r.ok,
                        r.duration_s);
  absl::StrAppendFormat(&text, "throughput:        %.2f requests/s, %.1f output tokens/s\n",
                        r.request_throughput, r.output_token_throughput);
  absl::StrAppendFormat(&text, "tokens:            %d prompt, %d output (%.2f per message)\n",
                        r.prompt_tokens, r.output_tokens, r.tokens_per_message);
  absl::StrAppendFormat(&text, "latency (ms)       %10s %10s %10s %10s %10s %9s\n", "mean", "p50",
                        "p90", "p99", "max", "n");
  text += FormatDistributionRow("TTFT", r.ttft);
  text += FormatDistributionRow("TPOT", r.tpot);
  text += FormatDistributionRow("ITL (message)", r.itl_message);
  text += FormatDistributionRow("ITL (token)", r.itl_token);
  text += FormatDistributionRow("end-to-end", r.e2e);
  text += "status codes:\n";
  for (const auto& [code, count] : r.status_counts) {
    absl::StrAppendFormat(&text, "  [%s] %d\n", code, count);
  }
  for (const auto& [code, message] : r.first_errors) {
    absl::StrAppendFormat(&text, "  first %s: %s\n", code, message);
  }
  return text;
}

nlohmann::json ReportToJson(const LoadReport& r, const nlohmann::json& config) {
  nlohmann::json status = nlohmann::json::object();
  for (const auto& [code, count] : r.status_counts) status[code] = count;
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [code, message] : r.first_errors) errors[code] = message;
  return {{"config", config},
          {"duration_s", r.duration_s},
          {"requests", r.requests},
          {"ok", r.ok},
          {"status_codes", status},
          {"first_errors", errors},
          {"prompt_tokens", r.prompt_tokens},
          {"output_tokens", r.output_tokens},
          {"request_throughput", r.request_throughput},
          {"output_token_throughput", r.output_token_throughput},
          {"tokens_per_message", r.tokens_per_message},
          {"ttft", DistributionJson(r.ttft)},
          {"tpot", DistributionJson(r.tpot)},
          {"itl_message", DistributionJson(r.itl_message)},
          {"itl_token", DistributionJson(r.itl_token)},
          {"e2e", DistributionJson(r.e2e)}};
}

}  // namespace ropewire::client
