// TLS, mutual TLS and API keys on the real server: TLS works, and plaintext, a client that
// trusts another CA, and (with --tls-client-ca) a client without a certificate or with one from
// another CA are refused; API keys: missing, wrong and right keys, health and reflection open
// without one, SIGHUP re-reading the key file, and no key ever in the log. The test PKI is made
// at test time by tests/server/make_test_certs.sh.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/common/fixtures.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The test PKI, made once per test binary.
const std::string& PkiDir() {
  static const std::string dir = [] {
    // One directory per process: ctest runs each test as its own process, in parallel.
    const std::string d = ::testing::TempDir() + "/ropewire_test_pki." + std::to_string(getpid());
    std::filesystem::remove_all(d);
    const std::string command =
        SourceDir() + "/tests/server/make_test_certs.sh " + d + " > /dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    return d;
  }();
  return dir;
}

std::string Pki(const std::string& file) { return PkiDir() + "/" + file; }

std::shared_ptr<grpc::Channel> TlsChannel(int port, const std::string& ca,
                                          const std::string& client = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(Pki(ca + ".pem"));
  if (!client.empty()) {
    ssl.pem_cert_chain = ReadFile(Pki(client + ".pem"));
    ssl.pem_private_key = ReadFile(Pki(client + ".key"));
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(ssl),
                                   args);
}

std::shared_ptr<grpc::Channel> PlainChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

std::vector<std::string> ServerArgs(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--model", FixtureDir("llama_gqa"), "--threads",
                                   "1",       "--num-kv-blocks",       "32"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A short Generate over `channel`, with `api_key` when not empty.
grpc::Status Generate(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& api_key = "") {
  auto stub = v1::Inference::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  if (!api_key.empty()) context.AddMetadata("authorization", "Bearer " + api_key);
  v1::GenerateRequest request;
  for (int32_t id : {1, 2, 3}) request.add_prompt_token_ids(id);
  request.set_max_tokens(2);
  v1::GenerateResponse response;
  return stub->Generate(&context, request, &response);
}

TEST(Tls, ServesTlsAndRefusesPlaintextAndStrangers) {
  ServerProcess server;
  ASSERT_TRUE(
      server.Start(ServerArgs({"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key")})))
      << server.log();
  server.UseChannel(TlsChannel(server.port(), "ca"));
  ASSERT_TRUE(server.WaitServing()) << server.log();
  EXPECT_THAT(server.log(), HasSubstr("(TLS;"));
  EXPECT_TRUE(Generate(server.Channel()).ok());
  // Plaintext reaches a TLS port but never a handler.
  const grpc::Status plaintext = Generate(PlainChannel(server.port()));
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();
  // A client that trusts another CA refuses the server's certificate.
  const grpc::Status stranger = Generate(TlsChannel(server.port(), "other_ca"));
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::UNAVAILABLE) << stranger.error_message();
  EXPECT_EQ(server.Stop(SIGTERM), 0) << server.log();
}

TEST(Tls, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(ServerArgs({"--tls-cert", Pki("server.pem"), "--tls-key",
                                       Pki("server.key"), "--tls-client-ca", Pki("ca.pem")})))
      << server.log();
  server.UseChannel(TlsChannel(server.port(), "ca", "client"));
  ASSERT_TRUE(server.WaitServing()) << server.log();
  EXPECT_THAT(server.log(), HasSubstr("(mutual TLS;"));
  EXPECT_TRUE(Generate(server.Channel()).ok());
  const grpc::Status anonymous = Generate(TlsChannel(server.port(), "ca"));
  EXPECT_EQ(anonymous.error_code(), grpc::StatusCode::UNAVAILABLE) << anonymous.error_message();
  const grpc::Status stranger = Generate(TlsChannel(server.port(), "ca", "other_client"));
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::UNAVAILABLE) << stranger.error_message();
  EXPECT_EQ(Generate(PlainChannel(server.port())).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server.Stop(SIGTERM), 0) << server.log();
}

TEST(Tls, MismatchedFilesAreStartupErrorsNamingTheFlag) {
  struct Case {
    std::vector<std::string> flags;
    std::string expected;
  };
  for (const Case& c :
       {Case{{"--tls-cert", Pki("server.pem"), "--tls-key", Pki("client.key")},
             "--tls-key " + Pki("client.key") + " does not belong to the certificate"},
        Case{{"--tls-cert", Pki("server.key"), "--tls-key", Pki("server.key")},
             "holds no PEM certificate"},
        Case{{"--tls-cert", Pki("server.pem")}, "--tls-cert and --tls-key go together"},
        Case{{"--tls-cert", Pki("server.pem"), "--tls-key", Pki("server.key"), "--tls-client-ca",
              Pki("missing.pem")},
             "--tls-client-ca " + Pki("missing.pem") + ": cannot read"}}) {
    ServerProcess server;
    server.Start(ServerArgs(c.flags));
    EXPECT_NE(server.Stop(0, 10000), 0);  // signal 0 only waits: the server exits by itself
    EXPECT_THAT(server.log(), HasSubstr(c.expected));
  }
}

class ApiKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    key_file_ = ::testing::TempDir() + "/ropewire_api_keys." + std::to_string(getpid()) + ".txt";
    std::ofstream(key_file_) << "# keys for the test\nalice:sk-alice-0123456789\nsk-unnamed-42\n";
    ASSERT_TRUE(server_.Start(ServerArgs({"--api-key-file", key_file_}))) << server_.log();
    ASSERT_TRUE(server_.WaitServing()) << server_.log();
  }

  std::string key_file_;
  ServerProcess server_;
};

TEST_F(ApiKeys, MissingWrongAndRightKeys) {
  const grpc::Status missing = Generate(server_.Channel());
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("authorization: Bearer <key>"));
  const grpc::Status wrong = Generate(server_.Channel(), "sk-alice-9999999999");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), Not(HasSubstr("sk-")));
  EXPECT_TRUE(Generate(server_.Channel(), "sk-alice-0123456789").ok());
  EXPECT_TRUE(Generate(server_.Channel(), "sk-unnamed-42").ok());
  {  // Every method of the service needs the key.
    auto stub = v1::Inference::NewStub(server_.Channel());
    grpc::ClientContext info_context;
    v1::ModelInfo info;
    EXPECT_EQ(stub->GetModelInfo(&info_context, {}, &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    grpc::ClientContext stream_context;
    v1::GenerateRequest request;
    request.add_prompt_token_ids(1);
    auto reader = stub->GenerateStream(&stream_context, request);
    v1::GenerateStreamResponse message;
    EXPECT_FALSE(reader->Read(&message));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // The access log names the key, never shows one.
  ASSERT_TRUE(server_.WaitForLog("key=\"alice\" code=OK"));
  EXPECT_TRUE(server_.WaitForLog("key=\"key2\" code=OK"));
  EXPECT_THAT(server_.log(), HasSubstr("code=UNAUTHENTICATED"));
  EXPECT_EQ(server_.Stop(SIGTERM), 0);
  EXPECT_THAT(server_.log(), Not(HasSubstr("sk-")));
}

TEST_F(ApiKeys, HealthAndReflectionNeedNoKey) {
  {
    auto health = grpc::health::v1::Health::NewStub(server_.Channel());
    grpc::ClientContext health_context;
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&health_context, {}, &response).ok());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(server_.Channel());
    grpc::ClientContext context;
    auto stream = reflection->ServerReflectionInfo(&context);
    grpc::reflection::v1alpha::ServerReflectionRequest request;
    request.set_list_services("");
    ASSERT_TRUE(stream->Write(request));
    grpc::reflection::v1alpha::ServerReflectionResponse listed;
    ASSERT_TRUE(stream->Read(&listed));
    EXPECT_GE(listed.list_services_response().service_size(), 2);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
  EXPECT_EQ(server_.Stop(SIGTERM), 0);
}

TEST_F(ApiKeys, SighupRereadsTheKeyFile) {
  EXPECT_TRUE(Generate(server_.Channel(), "sk-alice-0123456789").ok());
  std::ofstream(key_file_) << "carol:sk-carol-abcdef\n";
  server_.Signal(SIGHUP);
  ASSERT_TRUE(server_.WaitForLog("SIGHUP: API keys re-read: 1")) << server_.log();
  EXPECT_EQ(Generate(server_.Channel(), "sk-alice-0123456789").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Generate(server_.Channel(), "sk-carol-abcdef").ok());
  // A broken file keeps the keys in use.
  std::ofstream(key_file_) << "bad name:whatever\n";
  server_.Signal(SIGHUP);
  ASSERT_TRUE(server_.WaitForLog("SIGHUP: keeping the API keys in use")) << server_.log();
  EXPECT_TRUE(Generate(server_.Channel(), "sk-carol-abcdef").ok());
  EXPECT_TRUE(server_.WaitForLog("key=\"carol\" code=OK"));
  EXPECT_EQ(server_.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace ropewire::testing
