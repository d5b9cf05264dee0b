#include "client/rpc_util.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "proto/status_names.h"

namespace ropewire::client {
namespace {

absl::Status ReadFile(const std::string& flag, const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  *contents = text.str();
  return absl::OkStatus();
}

}  // namespace

bool Connection::UsesTls() const {
  return tls || !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty() ||
         !tls_server_name.empty();
}

absl::Status Connection::Resolve() {
  if (!UsesTls()) {
    credentials = grpc::InsecureChannelCredentials();
    return absl::OkStatus();
  }
  if (tls_cert.empty() != tls_key.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  grpc::SslCredentialsOptions ssl;
  if (!tls_ca.empty()) {
    if (absl::Status s = ReadFile("--tls-ca", tls_ca, &ssl.pem_root_certs); !s.ok()) return s;
  }
  if (!tls_cert.empty()) {
    if (absl::Status s = ReadFile("--tls-cert", tls_cert, &ssl.pem_cert_chain); !s.ok()) return s;
    if (absl::Status s = ReadFile("--tls-key", tls_key, &ssl.pem_private_key); !s.ok()) return s;
  }
  credentials = grpc::SslCredentials(ssl);
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> MakeChannel(const Connection& connection, int connection_index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("ropewire.connection_index", connection_index);
  // Long completions with logprobs can exceed the 4 MiB default.
  args.SetMaxReceiveMessageSize(64 << 20);
  if (!connection.tls_server_name.empty())
    args.SetSslTargetNameOverride(connection.tls_server_name);
  auto credentials =
      connection.credentials ? connection.credentials : grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(connection.target, credentials, args);
}

void Authorize(grpc::ClientContext* context, const Connection& connection) {
  if (!connection.api_key.empty())
    context->AddMetadata("authorization", absl::StrCat("Bearer ", connection.api_key));
}

std::string DescribeStatus(const grpc::Status& status) {
  return absl::StrCat(GrpcStatusCodeName(status.error_code()), ": ", status.error_message());
}

void SetDeadline(grpc::ClientContext* context, double seconds) {
  if (seconds <= 0) return;
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
}

}  // namespace ropewire::client
