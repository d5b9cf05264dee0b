#include "bench/grpc/stream_client.h"

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "ropewire/v1/inference.grpc.pb.h"

namespace ropewire::bench {
namespace {

std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& tls_ca) {
  if (tls_ca.empty()) return grpc::InsecureChannelCredentials();
  std::ifstream in(tls_ca);
  std::stringstream pem;
  pem << in.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem.str();
  return grpc::SslCredentials(ssl);
}

std::unique_ptr<v1::Inference::Stub> ConnectedStub(int port, int index, const std::string& tls_ca) {
  grpc::ChannelArguments args;
  // Separate TCP connections per stream, as separate clients would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("ropewire.bench.connection", index);
  if (!tls_ca.empty()) args.SetSslTargetNameOverride("localhost");
  auto channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), Credentials(tls_ca), args);
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1::Inference::NewStub(channel);
}

v1::GenerateRequest BenchRequest(int tokens) {
  v1::GenerateRequest request;
  for (int id : {1, 2, 3, 4}) request.add_prompt_token_ids(id);
  request.set_max_tokens(static_cast<uint32_t>(tokens));
  request.set_temperature(0);
  request.set_ignore_eos(true);
  return request;
}

}  // namespace

ClientResult RunStreams(int port, int streams, int calls_per_stream, int tokens_per_call,
                        const std::string& tls_ca) {
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs;
  for (int i = 0; i < streams; ++i) stubs.push_back(ConnectedStub(port, i, tls_ca));
  const v1::GenerateRequest request = BenchRequest(tokens_per_call);
  ClientResult total;
  std::mutex mu;
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, stub = stubs[i].get()] {
      ClientResult mine;
      v1::GenerateStreamResponse message;
      for (int call = 0; call < calls_per_stream; ++call) {
        grpc::ClientContext context;
        auto reader = stub->GenerateStream(&context, request);
        while (reader->Read(&message)) {
          mine.tokens += message.token_ids_size();
          ++mine.messages;
        }
        grpc::Status status = reader->Finish();
        if (!status.ok()) {
          ++mine.failed_calls;
          if (mine.first_error.empty()) mine.first_error = status.error_message();
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      total.tokens += mine.tokens;
      total.messages += mine.messages;
      total.failed_calls += mine.failed_calls;
      if (total.first_error.empty()) total.first_error = mine.first_error;
    });
  }
  for (auto& t : threads) t.join();
  total.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return total;
}

}  // namespace ropewire::bench
