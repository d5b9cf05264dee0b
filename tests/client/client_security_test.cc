// ropewire-cli against a server that wants mutual TLS and an API key: the CLI's --tls-ca,
// --tls-cert, --tls-key and --tls-server-name make the handshake, and --api-key or
// ROPEWIRE_API_KEY authorize the call. The test PKI is made at test time by
// tests/server/make_test_certs.sh.
#include <stdlib.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/client/cli_process.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

class CliSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per process: ctest runs each test as its own process, in parallel.
    dir_ = ::testing::TempDir() + "/ropewire_cli_pki." + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    const std::string command = std::string(ROPEWIRE_SOURCE_DIR) +
                                "/tests/server/make_test_certs.sh " + dir_ + " > /dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ofstream(dir_ + "/keys.txt") << "cli:sk-cli-secret\n";
    const std::string model = std::string(ROPEWIRE_SOURCE_DIR) + "/tests/fixtures/models/llama_gqa";
    ASSERT_TRUE(
        server_.Start({"--model", model, "--threads", "1", "--num-kv-blocks", "64", "--tls-cert",
                       Pki("server.pem"), "--tls-key", Pki("server.key"), "--tls-client-ca",
                       Pki("ca.pem"), "--api-key-file", dir_ + "/keys.txt"}))
        << server_.log();
    server_.UseChannel(TlsChannel());
    ASSERT_TRUE(server_.WaitServing()) << server_.log();
  }
  void TearDown() override {
    unsetenv("ROPEWIRE_API_KEY");
    server_.Stop(SIGTERM);
    std::filesystem::remove_all(dir_);
  }

  std::string Pki(const std::string& file) const { return dir_ + "/" + file; }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // The test's own mutual-TLS channel, for waiting until the server is SERVING.
  std::shared_ptr<grpc::Channel> TlsChannel() const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(Pki("ca.pem"));
    ssl.pem_cert_chain = ReadFile(Pki("client.pem"));
    ssl.pem_private_key = ReadFile(Pki("client.key"));
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_.port()),
                                     grpc::SslCredentials(ssl), args);
  }

  // ropewire-cli generate over mutual TLS (the client certificate from the server's CA), plus
  // `extra` flags.
  CliResult Generate(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"generate",
                                     "--target",
                                     "127.0.0.1:" + std::to_string(server_.port()),
                                     "--tls-ca",
                                     Pki("ca.pem"),
                                     "--tls-cert",
                                     Pki("client.pem"),
                                     "--tls-key",
                                     Pki("client.key"),
                                     "--tls-server-name",
                                     "localhost",
                                     "--prompt-token-ids",
                                     "1,2,3",
                                     "--max-tokens",
                                     "3",
                                     "--timeout",
                                     "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  }

  std::string dir_;
  ServerProcess server_;
};

TEST_F(CliSecurityTest, MutualTlsAndTheKeyFromTheFlagOrTheEnvironment) {
  const CliResult with_flag = Generate({"--api-key", "sk-cli-secret"});
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.err;
  EXPECT_NE(with_flag.err.find("finish: length"), std::string::npos) << with_flag.err;

  setenv("ROPEWIRE_API_KEY", "sk-cli-secret", 1);
  const CliResult with_env = Generate({});
  EXPECT_EQ(with_env.exit_code, 0) << with_env.err;
  // The flag wins over the environment.
  const CliResult wrong = Generate({"--api-key", "sk-cli-wrong"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("UNAUTHENTICATED"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("sk-cli-wrong"), std::string::npos) << wrong.err;
}

TEST_F(CliSecurityTest, MissingKeyAndMissingClientCertificateAreRefused) {
  const CliResult no_key = Generate({});
  EXPECT_EQ(no_key.exit_code, 1);
  EXPECT_NE(no_key.err.find("UNAUTHENTICATED"), std::string::npos) << no_key.err;

  // Without a client certificate the server ends the handshake: the call never starts.
  const CliResult anonymous =
      RunCli({"health", "--target", "127.0.0.1:" + std::to_string(server_.port()), "--tls-ca",
              Pki("ca.pem"), "--tls-server-name", "localhost", "--timeout", "5"});
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_NE(anonymous.err.find("UNAVAILABLE"), std::string::npos) << anonymous.err;
  // A TLS flag without its partner is a usage error.
  const CliResult half =
      RunCli({"health", "--target", "127.0.0.1:1", "--tls-cert", Pki("client.pem")});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_NE(half.err.find("--tls-cert and --tls-key go together"), std::string::npos) << half.err;
}

}  // namespace
}  // namespace ropewire::testing
