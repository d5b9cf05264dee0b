// ropewire-cli load against the real server: the JSON report counts the right requests and
// tokens in each load shape. No timing assertions: only counts and the presence of figures.
#include <cstdio>
#include <fstream>

#include "tests/client/cli_test_fixture.h"

namespace ropewire::testing {
namespace {

using CliLoadTest = CliTest;

nlohmann::json RunLoad(std::vector<std::string> args) {
  const std::string path = ::testing::TempDir() + "/ropewire_load_report.json";
  std::remove(path.c_str());
  args.insert(args.end(), {"--json", path});
  const CliResult result = CliTest::Cli("load", args);
  EXPECT_EQ(result.exit_code, 0) << result.err << result.out;
  EXPECT_NE(result.out.find("TTFT"), std::string::npos) << result.out;
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

TEST_F(CliLoadTest, ClosedLoopStreamingCountsRequestsAndTokens) {
  const nlohmann::json report =
      RunLoad({"--concurrency", "3", "--requests", "7", "--prompt-len", "uniform:2,9",
               "--output-len", "5", "--connections", "2", "--temperature", "0"});
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report.at("requests"), 7);
  EXPECT_EQ(report.at("ok"), 7);
  EXPECT_EQ(report.at("status_codes"), nlohmann::json({{"OK", 7}}));
  EXPECT_EQ(report.at("output_tokens"), 35);
  EXPECT_EQ(report.at("ttft").at("count"), 7);
  EXPECT_EQ(report.at("tpot").at("count"), 7);
  EXPECT_EQ(report.at("e2e").at("count"), 7);
  EXPECT_EQ(report.at("itl_token").at("count"), 7 * 4);  // every token after the first
  EXPECT_GT(report.at("output_token_throughput").get<double>(), 0);
  EXPECT_EQ(report.at("config").at("stream"), true);
  EXPECT_EQ(report.at("config").at("vocab_size"), 256);
}

TEST_F(CliLoadTest, UnaryCallsCountTokensWithoutTpot) {
  const nlohmann::json report =
      RunLoad({"--concurrency", "2", "--requests", "4", "--output-len", "6", "--unary"});
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report.at("ok"), 4);
  EXPECT_EQ(report.at("output_tokens"), 24);
  EXPECT_EQ(report.at("tpot").at("count"), 0);
  EXPECT_EQ(report.at("config").at("stream"), false);
}

TEST_F(CliLoadTest, PoissonArrivalsSendTheRequestedCount) {
  const nlohmann::json report = RunLoad(
      {"--rate", "200", "--requests", "6", "--output-len", "exponential:4,8", "--seed", "3"});
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report.at("ok"), 6);
  EXPECT_GE(report.at("output_tokens").get<int>(), 6);
  EXPECT_LE(report.at("output_tokens").get<int>(), 48);
  EXPECT_EQ(report.at("config").at("mode"), "poisson");
}

TEST_F(CliLoadTest, RejectedRequestsAppearInTheStatusDistribution) {
  const std::string path = ::testing::TempDir() + "/ropewire_load_rejected.json";
  // A stop token outside the 256-token vocabulary: the server rejects every request.
  const CliResult result = Cli(
      "load", {"--requests", "3", "--output-len", "4", "--stop-token-ids", "999", "--json", path});
  EXPECT_EQ(result.exit_code, 1);
  std::ifstream in(path);
  const nlohmann::json report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report.at("ok"), 0);
  EXPECT_EQ(report.at("status_codes"), nlohmann::json({{"INVALID_ARGUMENT", 3}}));
  EXPECT_NE(result.out.find("[INVALID_ARGUMENT] 3"), std::string::npos) << result.out;
}

TEST_F(CliLoadTest, TextPromptNeedsATokenizer) {
  const CliResult result = Cli("load", {"--requests", "2", "--prompt", "hello"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("tokenizer"), std::string::npos) << result.err;
}

TEST_F(CliLoadTest, UnreachableTargetFails) {
  const CliResult result =
      RunCli({"load", "--requests", "1", "--target", "127.0.0.1:" + std::to_string(UnusedPort())});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("UNAVAILABLE"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ropewire::testing
