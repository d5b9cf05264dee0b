// The metrics' exposition parses, has the right types, and moves by what was recorded.
#include "server/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/prometheus_text.h"

namespace ropewire::server {
namespace {

using testing::PromScrape;

PromScrape Scrape(const ServerMetrics& metrics) {
  auto scrape = PromScrape::Parse(metrics.Scrape());
  EXPECT_TRUE(scrape.ok()) << scrape.status() << "\n" << metrics.Scrape();
  return scrape.ok() ? *scrape : PromScrape();
}

TEST(ServerMetrics, FamiliesHaveTheirTypes) {
  ServerMetrics metrics;
  scheduler::EngineStats stats;
  stats.num_blocks = 100;
  stats.num_free_blocks = 75;
  stats.num_running = 3;
  stats.num_waiting = 2;
  stats.generated_tokens = 1234;
  stats.prompt_tokens = 500;
  stats.prefix_hit_tokens = 128;
  stats.preemptions = 4;
  metrics.SetEngineSource([stats] { return std::optional<scheduler::EngineStats>(stats); });
  // A labelled family appears with its first series: one finished call.
  CallRecord call;
  call.method = "Tokenize";
  metrics.RecordCall(call);
  const PromScrape s = Scrape(metrics);
  const std::map<std::string, std::string> types = {
      {"ropewire_num_requests_running", "gauge"},
      {"ropewire_num_requests_waiting", "gauge"},
      {"ropewire_kv_cache_usage_perc", "gauge"},
      {"ropewire_kv_cache_free_blocks", "gauge"},
      {"ropewire_kv_cache_blocks", "gauge"},
      {"ropewire_generation_tokens_total", "counter"},
      {"ropewire_prompt_tokens_total", "counter"},
      {"ropewire_num_preemptions_total", "counter"},
      {"ropewire_prefix_cache_queries_total", "counter"},
      {"ropewire_prefix_cache_hits_total", "counter"},
      {"ropewire_requests_total", "counter"},
      {"ropewire_time_to_first_token_seconds", "histogram"},
      {"ropewire_inter_token_latency_seconds", "histogram"},
      {"ropewire_e2e_request_latency_seconds", "histogram"},
      {"ropewire_request_queue_time_seconds", "histogram"},
      {"ropewire_request_prompt_tokens", "histogram"},
      {"ropewire_request_generation_tokens", "histogram"},
      {"ropewire_step_duration_seconds", "histogram"},
      {"ropewire_model_step_seconds", "histogram"},
      {"ropewire_step_tokens", "histogram"},
  };
  for (const auto& [name, type] : types) {
    ASSERT_NE(s.Family(name), nullptr) << name;
    EXPECT_EQ(s.Family(name)->type, type) << name;
    EXPECT_FALSE(s.Family(name)->help.empty()) << name;
  }
  EXPECT_EQ(s.Value("ropewire_num_requests_running"), 3);
  EXPECT_EQ(s.Value("ropewire_num_requests_waiting"), 2);
  EXPECT_EQ(s.Value("ropewire_kv_cache_usage_perc"), 0.25);
  EXPECT_EQ(s.Value("ropewire_kv_cache_free_blocks"), 75);
  EXPECT_EQ(s.Value("ropewire_generation_tokens_total"), 1234);
  EXPECT_EQ(s.Value("ropewire_prefix_cache_queries_total"), 500);
  EXPECT_EQ(s.Value("ropewire_prefix_cache_hits_total"), 128);
  EXPECT_EQ(s.Value("ropewire_num_preemptions_total"), 4);
}

TEST(ServerMetrics, ObservationsLandInTheirBuckets) {
  ServerMetrics metrics;
  // A GPU-sized step and a CPU-sized one resolve into different buckets.
  metrics.ObserveStep({0.0004, 0.0003, 1, 1});
  metrics.ObserveStep({0.040, 0.035, 300, 8});
  metrics.ObserveFirstToken(0.120, 12);
  for (int i = 0; i < 5; ++i) metrics.ObserveInterToken(0.0007);
  CallRecord call;
  call.method = "GenerateStream";
  call.finish_reason = "length";
  call.prompt_tokens = 12;
  call.completion_tokens = 6;
  call.queue_seconds = 0.002;
  call.e2e_seconds = 0.9;
  metrics.RecordCall(call);
  CallRecord refused;
  refused.method = "Generate";
  refused.code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  metrics.RecordCall(refused);

  const PromScrape s = Scrape(metrics);
  const auto bucket = [&](const std::string& name, const std::string& le) {
    return s.ValueOr0(name + "_bucket", {{"le", le}});
  };
  EXPECT_EQ(bucket("ropewire_step_duration_seconds", "0.0005"), 1);
  EXPECT_EQ(bucket("ropewire_step_duration_seconds", "0.025"), 1);
  EXPECT_EQ(bucket("ropewire_step_duration_seconds", "0.05"), 2);
  EXPECT_EQ(bucket("ropewire_model_step_seconds", "0.00025"), 0);
  EXPECT_EQ(bucket("ropewire_model_step_seconds", "0.0005"), 1);
  EXPECT_EQ(bucket("ropewire_step_tokens", "256"), 1);
  EXPECT_EQ(bucket("ropewire_step_tokens", "512"), 2);
  EXPECT_EQ(s.Value("ropewire_step_tokens_sum"), 301);
  EXPECT_EQ(s.Value("ropewire_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(s.Value("ropewire_prompt_tokens_total"), 12);
  EXPECT_EQ(bucket("ropewire_inter_token_latency_seconds", "0.0005"), 0);
  EXPECT_EQ(bucket("ropewire_inter_token_latency_seconds", "0.001"), 5);
  EXPECT_EQ(s.Value("ropewire_requests_total",
                    {{"method", "GenerateStream"}, {"code", "OK"}, {"finished_reason", "length"}}),
            1);
  EXPECT_EQ(s.Value("ropewire_requests_total", {{"method", "Generate"},
                                                {"code", "RESOURCE_EXHAUSTED"},
                                                {"finished_reason", "none"}}),
            1);
  // Only the call that generated counts toward the per-request histograms.
  EXPECT_EQ(s.Value("ropewire_e2e_request_latency_seconds_count"), 1);
  EXPECT_EQ(s.Value("ropewire_request_queue_time_seconds_count"), 1);
  EXPECT_EQ(s.Value("ropewire_request_generation_tokens_sum"), 6);
  EXPECT_EQ(s.Value("ropewire_request_prompt_tokens_sum"), 12);
  // No engine yet (the model loads): the engine's families are absent rather than zero.
  EXPECT_EQ(s.Family("ropewire_num_requests_running"), nullptr);
}

TEST(PromScrape, RefusesMalformedExpositions) {
  EXPECT_FALSE(PromScrape::Parse("no_type 1\n").ok());
  EXPECT_FALSE(PromScrape::Parse("# TYPE a counter\na{x=\"1} 2\n").ok());
  EXPECT_FALSE(PromScrape::Parse("# TYPE a counter\na one\n").ok());
  EXPECT_FALSE(PromScrape::Parse("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} "
                                 "1\nh_sum 1\nh_count 1\n")
                   .ok());
  EXPECT_TRUE(PromScrape::Parse("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} "
                                "2\nh_sum 3\nh_count 2\n")
                  .ok());
}

}  // namespace
}  // namespace ropewire::server
