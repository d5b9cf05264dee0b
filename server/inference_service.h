// ropewire.v1.Inference over the callback API. Reactions never block: generation runs on the
// engine thread, which hands results to each call's GenerationStream.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "ropewire/v1/inference.grpc.pb.h"
#include "scheduler/engine.h"
#include "server/request_builder.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {

// kDraining still admits calls: once a drain sends GOAWAY, the only calls that reach a handler
// are ones a client or balancer sent before it saw the GOAWAY, and they are served (decision 10:
// a replica never answers a new call UNAVAILABLE on a connection a balancer still uses).
enum class ServingState { kLoading, kServing, kDraining };

// Response metadata naming the replica that answered a generation call.
inline constexpr char kReplicaMetadataKey[] = "ropewire-replica";

class InferenceService final : public v1::Inference::CallbackService {
 public:
  InferenceService(RequestLimits limits, std::string device, std::string replica_name = "");

  // Called once the model is loaded; the service answers UNAVAILABLE before that.
  void SetModel(std::shared_ptr<scheduler::Engine> engine,
                std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer, std::string model_path);
  void SetState(ServingState state) { state_.store(state); }
  ServingState state() const { return state_.load(); }

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* GetServerStats(grpc::CallbackServerContext* context,
                                           const v1::GetServerStatsRequest* request,
                                           v1::ServerStats* response) override;

  // What a generation call needs, or the status to fail it with.
  struct Admission {
    grpc::Status status;
    std::shared_ptr<scheduler::Engine> engine;
    std::shared_ptr<class GenerationStream> stream;
    BuiltRequest built;
  };
  Admission Admit(grpc::CallbackServerContext* context, const v1::GenerateRequest& request);

 private:
  std::string NewRequestId();
  void NameReplica(grpc::CallbackServerContext* context) const;

  const RequestLimits limits_;
  const std::string device_;
  const std::string replica_name_;
  std::atomic<ServingState> state_{ServingState::kLoading};
  std::atomic<uint64_t> next_request_{1};
  mutable std::mutex mu_;  // guards the model pointers below (set once)
  std::shared_ptr<scheduler::Engine> engine_;
  std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer_;
  std::string model_path_;
};

}  // namespace ropewire::server
