// ropewire-tokenize end to end: encodes and decodes like the reference, fails cleanly on bad
// input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tests/tokenizer/fixtures.h"

namespace ropewire::tokenizer::testing {
namespace {

using ::testing::HasSubstr;

struct CliResult {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs the CLI with `input` on stdin.
CliResult RunCli(const std::string& args, const std::string& input) {
  const std::string base = std::filesystem::temp_directory_path() /
                           ("ropewire_tokenize_cli_" + std::to_string(::getpid()));
  std::ofstream(base + ".in", std::ios::binary) << input;
  const std::string command = std::string(ROPEWIRE_BINARY_DIR) + "/tokenizer/ropewire-tokenize " +
                              args + " < " + base + ".in > " + base + ".out 2> " + base + ".err";
  const int status = std::system(command.c_str());
  CliResult result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(base + ".out"),
                   ReadFile(base + ".err")};
  for (const char* suffix : {".in", ".out", ".err"}) std::filesystem::remove(base + suffix);
  return result;
}

class TokenizerCli : public ::testing::Test {
 protected:
  const std::string path_ = FixturesDir() + "/sentencepiece_llama2/tokenizer.json";
  const Reference reference_ = LoadReference("sentencepiece_llama2");
};

TEST_F(TokenizerCli, EncodesLikeTheReference) {
  for (size_t i : {0, 25, 32, 55}) {  // plain, CJK, emoji ZWJ, special tokens in the text
    const ReferenceCase& item = reference_.cases.at(i);
    CliResult result = RunCli(path_, item.text);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(Json::parse(result.out), Json(item.ids)) << item.text;
    result = RunCli(path_ + " --no-special", item.text);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(Json::parse(result.out), Json(item.ids_no_special)) << item.text;
  }
}

TEST_F(TokenizerCli, DecodesLikeTheReference) {
  const ReferenceCase& item = reference_.cases.at(55);
  CliResult result = RunCli(path_ + " --decode", Json(item.ids).dump());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, *item.decoded);
  result = RunCli("--no-special --decode " + path_, Json(item.ids).dump());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, *item.decoded_skip_special);
}

TEST_F(TokenizerCli, AcceptsAModelDirectory) {
  const CliResult result = RunCli(FixturesDir() + "/sentencepiece_llama2", "Hello world");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json::parse(result.out), Json(reference_.cases.at(0).ids));
}

TEST_F(TokenizerCli, BadInputFailsWithAMessage) {
  struct Case {
    std::string args;
    std::string input;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/nonexistent/tokenizer.json", "hi", "cannot open"},
      {path_, "bad \xFF byte", "UTF-8"},
      {path_ + " --decode", "not json", "JSON array"},
      {path_ + " --decode", "[1, -2]", "-2"},
      {path_ + " --decode", "[1, 2.5]", "2.5"},
      {path_ + " --decode", "[1, 99999]", "99999"},
  };
  for (const Case& item : cases) {
    const CliResult result = RunCli(item.args, item.input);
    EXPECT_EQ(result.exit_code, 1) << item.args;
    EXPECT_THAT(result.err, HasSubstr(item.message)) << item.args;
    EXPECT_EQ(result.out, "") << item.args;
  }
}

TEST_F(TokenizerCli, UsageErrors) {
  EXPECT_EQ(RunCli("", "").exit_code, 2);
  EXPECT_EQ(RunCli(path_ + " --frobnicate", "").exit_code, 2);
  EXPECT_THAT(RunCli(path_ + " extra", "").err, HasSubstr("usage"));
}

}  // namespace
}  // namespace ropewire::tokenizer::testing
