#include "bench/grpc/bench_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "bench/grpc/null_model.h"
#include "ropewire/v1/inference.grpc.pb.h"
#include "scheduler/engine.h"
#include "server/inference_service.h"
#include "server/metrics.h"
#include "server/tls.h"

namespace ropewire::bench {
namespace {

// Messages shaped like the real server's: a request id and one token; the last one also the
// finish reason and usage.
struct EchoMessages {
  v1::GenerateStreamResponse token;
  v1::GenerateStreamResponse last;
};

class EchoReactor : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
 public:
  EchoReactor(int count, const EchoMessages* messages) : remaining_(count), messages_(messages) {
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (--remaining_ > 0) {
      StartWrite(&messages_->token);
    } else {
      StartWriteAndFinish(&messages_->last, grpc::WriteOptions(), grpc::Status::OK);
    }
  }

  int remaining_;
  const EchoMessages* const messages_;
};

class EchoService final : public v1::Inference::CallbackService {
 public:
  EchoService() {
    messages_.token.set_request_id("rw-5eed00-1");
    messages_.token.add_token_ids(NullModel::kEmittedToken);
    messages_.last = messages_.token;
    messages_.last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  }
  grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* /*context*/, const v1::GenerateRequest* request) override {
    return new EchoReactor(std::max<int>(1, static_cast<int>(request->max_tokens())), &messages_);
  }

 private:
  EchoMessages messages_;
};

int64_t ProcessCpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto micros = [](const timeval& t) { return int64_t(t.tv_sec) * 1000000 + t.tv_usec; };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

void AnswerSamples(const scheduler::Engine* engine) {
  std::string line;
  while (std::getline(std::cin, line) && line != "quit") {
    scheduler::EngineStats stats;
    if (engine != nullptr) stats = engine->Stats();
    std::cout << "cpu_us " << ProcessCpuMicros() << " engine_us "
              << int64_t(stats.schedule_seconds * 1e6) << " sample_us "
              << int64_t(stats.sample_seconds * 1e6) << " execute_us "
              << int64_t(stats.execute_seconds * 1e6) << " steps " << stats.steps << std::endl;
  }
}

}  // namespace

int ServeMain(const std::string& kind, int vocab_size) {
  std::unique_ptr<grpc::Service> service;
  std::shared_ptr<scheduler::Engine> engine;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  // Outlives the engine and the service, which record into it.
  auto metrics = std::make_unique<server::ServerMetrics>();
  if (kind == "echo") {
    service = std::make_unique<EchoService>();
  } else if (kind == "ropewire" || kind == "ropewire-metrics" || kind == "ropewire-tls") {
    const bool with_metrics = kind == "ropewire-metrics";
    if (kind == "ropewire-tls") {
      const char* pki = std::getenv(kBenchPkiVariable);
      if (pki == nullptr) {
        std::cerr << kBenchPkiVariable << " is not set\n";
        return 1;
      }
      auto tls = server::MakeServerCredentials(
          {std::string(pki) + "/server.pem", std::string(pki) + "/server.key", "", 3600});
      if (!tls.ok()) {
        std::cerr << "tls: " << tls.status() << "\n";
        return 1;
      }
      credentials = *tls;
    }
    constexpr int kMaxModelLen = 8192, kBlocks = 8192, kBlockSize = 16;
    scheduler::EngineConfig config;
    if (with_metrics) {
      config.on_step = [m = metrics.get()](const scheduler::StepRecord& step) {
        m->ObserveStep(step);
      };
    }
    auto created = scheduler::Engine::Create(
        std::make_unique<NullModel>(vocab_size, kMaxModelLen, kBlocks, kBlockSize), config);
    if (!created.ok()) {
      std::cerr << "engine: " << created.status() << "\n";
      return 1;
    }
    engine = std::move(*created);
    server::CallObservers observers;
    if (with_metrics) observers.metrics = metrics.get();
    auto inference = std::make_unique<server::InferenceService>(server::RequestLimits{}, "cpu", "",
                                                                nullptr, observers);
    inference->SetModel(engine, nullptr, "null-model");
    inference->SetState(server::ServingState::kServing);
    service = std::move(inference);
  } else {
    std::cerr << "unknown server kind " << kind << "\n";
    return 2;
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", credentials, &port);
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return 1;
  std::cout << "port " << port << std::endl;
  AnswerSamples(engine.get());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (engine) engine->Stop(std::chrono::milliseconds(0));
  return 0;
}

}  // namespace ropewire::bench
