// The load generator's arithmetic: length distributions and the report's statistics.
#include <random>

#include <gtest/gtest.h>

#include "client/length_distribution.h"
#include "client/load_stats.h"

namespace ropewire::client {
namespace {

TEST(LengthDistributionTest, ParsesEachForm) {
  EXPECT_EQ(LengthDistribution::Parse("32", "x")->ToString(), "32");
  EXPECT_EQ(LengthDistribution::Parse("fixed:7", "x")->ToString(), "7");
  EXPECT_EQ(LengthDistribution::Parse("uniform:4,9", "x")->ToString(), "uniform:4,9");
  EXPECT_EQ(LengthDistribution::Parse("exponential:10", "x")->ToString(), "exponential:10,40");
  EXPECT_EQ(LengthDistribution::Parse("exponential:10,15", "x")->max(), 15);
  for (const char* bad : {"", "0", "-3", "uniform:9,4", "uniform:4", "exponential:", "normal:3",
                          "fixed:1,2", "12x"}) {
    auto parsed = LengthDistribution::Parse(bad, "output-len");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.status().message().find("--output-len"), absl::string_view::npos);
  }
}

TEST(LengthDistributionTest, SamplesStayInRange) {
  std::mt19937_64 rng(5);
  const auto uniform = *LengthDistribution::Parse("uniform:4,9", "x");
  const auto exponential = *LengthDistribution::Parse("exponential:10,15", "x");
  for (int i = 0; i < 1000; ++i) {
    const int u = uniform.Sample(rng);
    EXPECT_GE(u, 4);
    EXPECT_LE(u, 9);
    const int e = exponential.Sample(rng);
    EXPECT_GE(e, 1);
    EXPECT_LE(e, 15);
  }
}

TEST(SummarizeTest, InterpolatesPercentilesLikeNumpy) {
  const Distribution d = Summarize({4, 1, 3, 2, 5});
  EXPECT_EQ(d.count, 5);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_DOUBLE_EQ(d.p50, 3);
  EXPECT_DOUBLE_EQ(d.p90, 4.6);  // numpy.percentile([1..5], 90)
  EXPECT_DOUBLE_EQ(d.p99, 4.96);
  EXPECT_DOUBLE_EQ(d.max, 5);
  EXPECT_EQ(Summarize({}).count, 0);
}

TEST(BuildReportTest, DerivesTpotAndInterTokenLatency) {
  RequestRecord streamed;
  streamed.code = grpc::StatusCode::OK;
  streamed.ttft_s = 0.1;
  streamed.e2e_s = 0.7;
  streamed.output_tokens = 4;
  streamed.messages = 2;
  streamed.gaps_s = {0.6};  // the second message carried the last three tokens
  streamed.gap_tokens = {3};
  RequestRecord failed;
  failed.code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  failed.error_message = "queue full";
  const LoadReport report = BuildReport({streamed, failed}, 2.0);
  EXPECT_EQ(report.requests, 2);
  EXPECT_EQ(report.ok, 1);
  EXPECT_EQ(report.status_counts.at("OK"), 1);
  EXPECT_EQ(report.status_counts.at("RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(report.first_errors.at("RESOURCE_EXHAUSTED"), "queue full");
  EXPECT_DOUBLE_EQ(report.tpot.mean, 0.2);  // (0.7 - 0.1) / (4 - 1)
  EXPECT_EQ(report.itl_message.count, 1);
  EXPECT_DOUBLE_EQ(report.itl_message.mean, 0.6);
  EXPECT_EQ(report.itl_token.count, 3);
  EXPECT_DOUBLE_EQ(report.itl_token.mean, 0.2);
  EXPECT_DOUBLE_EQ(report.output_token_throughput, 2.0);
  EXPECT_DOUBLE_EQ(report.tokens_per_message, 2.0);
  EXPECT_EQ(report.e2e.count, 1);  // latencies are over OK requests only, as ghz does
}

}  // namespace
}  // namespace ropewire::client
