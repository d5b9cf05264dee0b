// One real ropewire-server (llama_gqa fixture: vocab 256, no tokenizer) per test suite, and
// helpers to run ropewire-cli against it.
#pragma once

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/client/cli_process.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {

class CliTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    server_ = std::make_unique<ServerProcess>();
    const std::string model = std::string(ROPEWIRE_SOURCE_DIR) + "/tests/fixtures/models/llama_gqa";
    ASSERT_TRUE(server_->Start({"--model", model, "--threads", "1", "--num-kv-blocks", "512"}))
        << server_->log();
    ASSERT_TRUE(server_->WaitServing()) << server_->log();
  }
  static void TearDownTestSuite() {
    if (server_) server_->Stop(SIGTERM);
    server_.reset();
  }

  static std::string Target() { return "127.0.0.1:" + std::to_string(server_->port()); }

  // ropewire-cli COMMAND --target <server> ARGS...
  static CliResult Cli(const std::string& command, std::vector<std::string> args) {
    args.insert(args.begin(), {command, "--target", Target()});
    return RunCli(args);
  }

  static nlohmann::json ParseJson(const std::string& text) {
    return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  }

  static inline std::unique_ptr<ServerProcess> server_;
};

}  // namespace ropewire::testing
