// ropewire-cli's one-call commands against the real server: generate (unary and streamed),
// info, stats, health, and its errors.
#include <sstream>

#include "tests/client/cli_test_fixture.h"

namespace ropewire::testing {
namespace {

using CliCommandTest = CliTest;

std::vector<int> StreamedTokenIds(const std::string& json_lines) {
  std::vector<int> ids;
  std::istringstream lines(json_lines);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const nlohmann::json message = nlohmann::json::parse(line);
    for (int id : message.at("token_ids")) ids.push_back(id);
  }
  return ids;
}

TEST_F(CliCommandTest, UnaryAndStreamedGenerationGiveTheSameTokens) {
  const std::vector<std::string> request = {"--prompt-token-ids", "1,5,9,33", "--max-tokens", "12",
                                            "--temperature",      "0",        "--json"};
  const CliResult unary = Cli("generate", request);
  ASSERT_EQ(unary.exit_code, 0) << unary.err;
  const nlohmann::json response = ParseJson(unary.out);
  ASSERT_FALSE(response.is_discarded()) << unary.out;
  const std::vector<int> unary_ids = response.at("token_ids").get<std::vector<int>>();
  EXPECT_EQ(unary_ids.size(), 12u);
  EXPECT_EQ(response.at("finish_reason"), "FINISH_REASON_LENGTH");

  std::vector<std::string> streamed_request = request;
  streamed_request.push_back("--stream");
  const CliResult streamed = Cli("generate", streamed_request);
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(StreamedTokenIds(streamed.out), unary_ids);
}

TEST_F(CliCommandTest, PlainOutputPrintsTokenIdsWhenThereIsNoText) {
  const CliResult unary =
      Cli("generate", {"--prompt-token-ids", "3,4", "--max-tokens", "4", "--temperature", "0"});
  ASSERT_EQ(unary.exit_code, 0) << unary.err;
  const CliResult streamed = Cli("generate", {"--prompt-token-ids", "3,4", "--max-tokens", "4",
                                              "--temperature", "0", "--stream"});
  ASSERT_EQ(streamed.exit_code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, unary.out);
  std::istringstream words(unary.out);
  int id = 0, count = 0;
  while (words >> id) ++count;
  EXPECT_EQ(count, 4) << unary.out;
  EXPECT_NE(unary.err.find("finish: length"), std::string::npos) << unary.err;
}

TEST_F(CliCommandTest, InfoDescribesTheFixtureModel) {
  const CliResult json = Cli("info", {"--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const nlohmann::json info = ParseJson(json.out);
  EXPECT_EQ(info.at("model_type"), "llama");
  EXPECT_EQ(info.at("vocab_size"), 256);
  EXPECT_EQ(info.at("has_tokenizer"), false);
  EXPECT_EQ(info.at("position_encoding").at("kind"), "rope");

  const CliResult pretty = Cli("info", {});
  ASSERT_EQ(pretty.exit_code, 0) << pretty.err;
  EXPECT_NE(pretty.out.find("vocab_size: 256"), std::string::npos) << pretty.out;
}

TEST_F(CliCommandTest, StatsCountGeneratedTokens) {
  ASSERT_EQ(Cli("generate", {"--prompt-token-ids", "7", "--max-tokens", "3"}).exit_code, 0);
  const CliResult result = Cli("stats", {"--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json stats = ParseJson(result.out);
  EXPECT_EQ(stats.at("state"), "serving");
  // proto3 JSON writes 64-bit integers as strings.
  EXPECT_GE(std::stoll(stats.at("generated_tokens").get<std::string>()), 3);
  EXPECT_EQ(stats.at("running_requests"), 0);
}

TEST_F(CliCommandTest, HealthExitsZeroWhenServing) {
  const CliResult whole = Cli("health", {});
  EXPECT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_EQ(whole.out, "SERVING\n");
  EXPECT_EQ(Cli("health", {"--service", "ropewire.v1.Inference"}).exit_code, 0);
  const CliResult unknown = Cli("health", {"--service", "no.such.Service"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("NOT_FOUND"), std::string::npos) << unknown.err;
}

TEST_F(CliCommandTest, HealthExitsOneWhenNothingListens) {
  const CliResult result =
      RunCli({"health", "--target", "127.0.0.1:" + std::to_string(UnusedPort())});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("UNAVAILABLE"), std::string::npos) << result.err;
}

TEST_F(CliCommandTest, ServerErrorsNameTheirCode) {
  const CliResult out_of_vocab = Cli("generate", {"--prompt-token-ids", "999"});
  EXPECT_EQ(out_of_vocab.exit_code, 1);
  EXPECT_NE(out_of_vocab.err.find("INVALID_ARGUMENT"), std::string::npos) << out_of_vocab.err;
  const CliResult text_prompt = Cli("generate", {"--prompt", "hello", "--stream"});
  EXPECT_EQ(text_prompt.exit_code, 1);
  EXPECT_NE(text_prompt.err.find("FAILED_PRECONDITION"), std::string::npos) << text_prompt.err;
}

TEST_F(CliCommandTest, BadFlagsExitTwoWithAMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"generate", "--prompt-token-ids", "1", "--max-tokens", "many"}, "--max-tokens"},
      {{"generate", "--prompt-token-ids", "1,x"}, "--prompt-token-ids"},
      {{"generate", "--max-tokens", "3"}, "--prompt"},
      {{"generate", "--prompt-token-ids", "1", "--temperature", "warm"}, "--temperature"},
      {{"generate", "--prompt-token-ids", "1", "--no-such-flag"}, "--no-such-flag"},
      {{"load", "--concurrency", "0"}, "--concurrency"},
      {{"load", "--output-len", "gaussian:3"}, "--output-len"},
      {{"tokenize"}, "--text"},
      {{"frobnicate"}, "unknown command"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--target", Target()});
    const CliResult result = RunCli(args);
    EXPECT_EQ(result.exit_code, 2) << c.args[0] << " " << c.message << ": " << result.err;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << result.err;
  }
}

}  // namespace
}  // namespace ropewire::testing
