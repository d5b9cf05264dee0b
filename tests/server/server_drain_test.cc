// SIGTERM drain: health turns NOT_SERVING, new calls get UNAVAILABLE, the in-flight stream
// finishes normally, and the process exits 0.
#include <signal.h>

#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/common/fixtures.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;

TEST(ServerDrain, SigtermLetsInFlightWorkFinish) {
  ServerProcess server;
  // The demo model: its 480-token stream lasts long enough to watch the drain from outside.
  ASSERT_TRUE(server.Start({"--model", std::string(ROPEWIRE_SOURCE_DIR) + "/models/demo", "--threads", "1",
                            "--drain-grace-seconds", "60"}))
      << server.log();
  ASSERT_TRUE(server.WaitServing()) << server.log();
  auto stub = v1::Inference::NewStub(server.Channel());

  v1::GenerateRequest request;
  for (int32_t id : {0, 1145, 260}) request.add_prompt_token_ids(id);
  request.set_max_tokens(480);
  request.set_temperature(0.0f);
  request.set_ignore_eos(true);
  grpc::ClientContext stream_context;
  auto reader = stub->GenerateStream(&stream_context, request);
  v1::GenerateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));

  std::thread stopper([&] { server.Stop(SIGTERM); });
  // While the stream is still open the server is draining: health NOT_SERVING, new calls
  // UNAVAILABLE. (Checked against the server's own state, polled, not slept on.)
  auto health = grpc::health::v1::Health::NewStub(server.Channel());
  bool saw_not_serving = false, saw_unavailable = false;
  for (int i = 0; i < 500 && !(saw_not_serving && saw_unavailable); ++i) {
    grpc::ClientContext hc;
    grpc::health::v1::HealthCheckResponse hr;
    if (health->Check(&hc, grpc::health::v1::HealthCheckRequest(), &hr).ok() &&
        hr.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      grpc::ClientContext gc;
      v1::GenerateResponse gr;
      const grpc::Status s = stub->Generate(&gc, request, &gr);
      saw_unavailable = s.error_code() == grpc::StatusCode::UNAVAILABLE;
    }
    std::this_thread::sleep_for(2ms);
  }
  int tokens = message.token_ids_size();
  v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&message)) {
    tokens += message.token_ids_size();
    reason = message.finish_reason();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 480);
  EXPECT_EQ(reason, v1::FINISH_REASON_LENGTH);
  stopper.join();
  EXPECT_TRUE(saw_not_serving);
  EXPECT_TRUE(saw_unavailable);
  EXPECT_FALSE(server.running());
}

}  // namespace
}  // namespace ropewire::testing
