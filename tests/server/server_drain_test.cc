// The SIGTERM drain, in the order a balancer can follow (DESIGN decision 10), watched from
// outside over real gRPC: health NOT_SERVING while the replica still serves normally for
// --drain-delay-seconds; then GOAWAY, so new calls are refused at the transport (a fresh TCP
// connection is refused, a call on the old connection fails to connect) and never answered by
// a handler; in-flight streams finish; the process exits 0. And when the grace runs out, what
// is left is cancelled and the process still exits 0, on time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using Clock = std::chrono::steady_clock;

// errno of a plain TCP connect to 127.0.0.1:port (0 when it connected).
int ConnectErrno(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int error = result == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

std::vector<std::string> DemoServerArgs(double delay_s, double grace_s) {
  return {"--model",
          std::string(ROPEWIRE_SOURCE_DIR) + "/models/demo",
          "--threads",
          "1",
          "--drain-delay-seconds",
          std::to_string(delay_s),
          "--drain-grace-seconds",
          std::to_string(grace_s)};
}

v1::GenerateRequest LongGreedyRequest(int max_tokens) {
  v1::GenerateRequest request;
  for (int32_t id : {0, 1145, 260}) request.add_prompt_token_ids(id);
  request.set_max_tokens(max_tokens);
  request.set_temperature(0.0f);
  request.set_ignore_eos(true);
  return request;
}

HealthCheckResponse::ServingStatus HealthOf(grpc::health::v1::Health::Stub& health) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  HealthCheckResponse response;
  if (!health.Check(&context, HealthCheckRequest(), &response).ok())
    return HealthCheckResponse::UNKNOWN;
  return response.status();
}

// Reads a stream to its end; returns the tokens received and sets `status`.
int ReadToEnd(grpc::ClientReader<v1::GenerateStreamResponse>& reader, int tokens_so_far,
              grpc::Status* status) {
  v1::GenerateStreamResponse message;
  while (reader.Read(&message)) tokens_so_far += message.token_ids_size();
  *status = reader.Finish();
  return tokens_so_far;
}

TEST(ServerDrain, GoawayRefusesNewCallsAtTheTransportWhileInFlightStreamsFinish) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(DemoServerArgs(/*delay_s=*/0, /*grace_s=*/60))) << server.log();
  ASSERT_TRUE(server.WaitServing()) << server.log();
  auto stub = v1::Inference::NewStub(server.Channel());

  // The demo model's 480-token stream lasts long enough to watch the drain from outside.
  grpc::ClientContext stream_context;
  auto reader = stub->GenerateStream(&stream_context, LongGreedyRequest(480));
  v1::GenerateStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));

  // Keep reading the stream on its own thread, as a proxy's event loop would: a synchronous
  // gRPC client reads its socket only while some thread is inside a call, and the GOAWAY has to
  // be read before the client knows to stop opening streams on this connection.
  grpc::Status stream_status;
  int tokens = 0;
  std::atomic<bool> stream_done{false};
  std::thread stream_reader([&] {
    tokens = ReadToEnd(*reader, first.token_ids_size(), &stream_status);
    stream_done = true;
  });
  int exit_code = -2;
  std::thread stopper([&] { exit_code = server.Stop(SIGTERM); });
  // The listener closes at once: a new connection is refused, not accepted and answered.
  bool refused = false;
  for (const auto end = Clock::now() + 10s; Clock::now() < end && !refused;) {
    refused = ConnectErrno(server.port()) == ECONNREFUSED;
    if (!refused) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(refused);
  // The GOAWAY went out together with the listener's close; one round trip on loopback later
  // the client has read it. (A stream a client opens before reading it is cancelled by gRPC's
  // core, not by ropewire: that window is what --drain-delay-seconds closes for balancers.)
  std::this_thread::sleep_for(50ms);
  // A new call on the channel whose connection still carries the stream is not sent on that
  // connection: the channel reconnects, is refused, and no handler ever answers the call.
  grpc::ClientContext late_context;
  late_context.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::GenerateResponse late_response;
  const grpc::Status late = stub->Generate(&late_context, LongGreedyRequest(4), &late_response);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAVAILABLE) << late.error_message();
  EXPECT_THAT(late.error_message(), ::testing::HasSubstr("onnect"))
      << "not a connection-level refusal";
  EXPECT_FALSE(stream_done) << "the stream ended before the late call; the test proves nothing";

  stream_reader.join();
  EXPECT_TRUE(stream_status.ok()) << stream_status.error_message();
  EXPECT_EQ(tokens, 480) << "the in-flight stream was cut short";
  stopper.join();
  EXPECT_EQ(exit_code, 0) << server.log();
}

TEST(ServerDrain, DelayKeepsServingWhileHealthSaysNotServing) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(DemoServerArgs(/*delay_s=*/4, /*grace_s=*/30))) << server.log();
  ASSERT_TRUE(server.WaitServing()) << server.log();
  auto stub = v1::Inference::NewStub(server.Channel());
  auto health = grpc::health::v1::Health::NewStub(server.Channel());

  // A Watch opened before the signal sees SERVING, then NOT_SERVING, then ends.
  grpc::ClientContext watch_context;
  auto watch = health->Watch(&watch_context, HealthCheckRequest());
  HealthCheckResponse watched;
  ASSERT_TRUE(watch->Read(&watched));
  EXPECT_EQ(watched.status(), HealthCheckResponse::SERVING);

  const auto signalled = Clock::now();
  int exit_code = -2;
  std::thread stopper([&] { exit_code = server.Stop(SIGTERM); });
  bool not_serving = false;
  for (const auto end = Clock::now() + 2s; Clock::now() < end && !not_serving;) {
    not_serving = HealthOf(*health) == HealthCheckResponse::NOT_SERVING;
  }
  ASSERT_TRUE(not_serving);
  ASSERT_TRUE(watch->Read(&watched));
  EXPECT_EQ(watched.status(), HealthCheckResponse::NOT_SERVING);

  // Still inside the delay: calls are served normally, on the old connection and on new ones.
  grpc::ClientContext old_connection_context;
  v1::GenerateResponse response;
  EXPECT_TRUE(stub->Generate(&old_connection_context, LongGreedyRequest(4), &response).ok());
  EXPECT_EQ(response.token_ids_size(), 4);
  auto fresh = v1::Inference::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server.port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext fresh_context;
  EXPECT_TRUE(fresh->Generate(&fresh_context, LongGreedyRequest(4), &response).ok());
  EXPECT_LT(Clock::now() - signalled, 4s)
      << "the checks above ran after the delay; they prove nothing";

  // The watch ends when the GOAWAY goes out, not at the end of the grace.
  EXPECT_FALSE(watch->Read(&watched));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  stopper.join();
  EXPECT_EQ(exit_code, 0) << server.log();
  EXPECT_GE(Clock::now() - signalled, 4s) << "exited before the drain delay was over";
  EXPECT_LT(Clock::now() - signalled, 20s) << "the watch held the shutdown";
}

TEST(ServerDrain, GraceExpiryCancelsWhatIsLeftAndStillExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(DemoServerArgs(/*delay_s=*/0, /*grace_s=*/0.3))) << server.log();
  ASSERT_TRUE(server.WaitServing()) << server.log();
  auto stub = v1::Inference::NewStub(server.Channel());
  constexpr int kStreams = 4;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateStreamResponse>>> readers;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stub->GenerateStream(contexts.back().get(), LongGreedyRequest(480)));
  }
  v1::GenerateStreamResponse first;
  for (auto& reader : readers) ASSERT_TRUE(reader->Read(&first));

  const auto signalled = Clock::now();
  const int exit_code = server.Stop(SIGTERM);
  EXPECT_EQ(exit_code, 0) << server.log();
  EXPECT_LT(Clock::now() - signalled, 10s) << "the grace was not enforced";
  int cut_short = 0;
  for (auto& reader : readers) {
    grpc::Status status;
    const int tokens = ReadToEnd(*reader, 1, &status);
    if (!status.ok() || tokens < 480) ++cut_short;
  }
  EXPECT_GT(cut_short, 0) << "every stream finished within 0.3 s; the test needs longer ones";
}

}  // namespace
}  // namespace ropewire::testing
