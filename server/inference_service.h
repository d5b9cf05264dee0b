// ropewire.v1.Inference over the callback API. Reactions never block: generation runs on the
// engine thread, which hands results to each call's GenerationStream.
//
// Every method is served raw (gRPC byte buffers): the service checks the caller's API key before
// anything else, then parses the request itself, so that a message that does not parse is
// INVALID_ARGUMENT naming the problem (gRPC's own parsing would answer UNIMPLEMENTED with no
// message). Each call ends in one access-log line and its metrics (CallTracker).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "ropewire/v1/inference.grpc.pb.h"
#include "scheduler/engine.h"
#include "server/api_keys.h"
#include "server/call_tracker.h"
#include "server/request_builder.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {

// kDraining still admits calls: once a drain sends GOAWAY, the only calls that reach a handler
// are ones a client or balancer sent before it saw the GOAWAY, and they are served (decision 10:
// a replica never answers a new call UNAVAILABLE on a connection a balancer still uses).
enum class ServingState { kLoading, kServing, kDraining };

const char* ServingStateName(ServingState state);

// Response metadata naming the replica that answered a generation call.
inline constexpr char kReplicaMetadataKey[] = "ropewire-replica";

using RawInferenceService = v1::Inference::WithRawCallbackMethod_Generate<
    v1::Inference::WithRawCallbackMethod_GenerateStream<
        v1::Inference::WithRawCallbackMethod_Tokenize<
            v1::Inference::WithRawCallbackMethod_GetModelInfo<
                v1::Inference::WithRawCallbackMethod_GetServerStats<v1::Inference::Service>>>>>;

class InferenceService final : public RawInferenceService {
 public:
  // `authenticator` null: no API keys. `observers` receive every finished call.
  InferenceService(RequestLimits limits, std::string device, std::string replica_name = "",
                   const Authenticator* authenticator = nullptr, CallObservers observers = {});

  // Called once the model is loaded; the service answers UNAVAILABLE before that.
  void SetModel(std::shared_ptr<scheduler::Engine> engine,
                std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer, std::string model_path);
  void SetState(ServingState state) { state_.store(state); }
  ServingState state() const { return state_.load(); }

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GenerateStream(
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetServerStats(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;

  // What a generation call needs, or the status to fail it with.
  struct Admission {
    grpc::Status status;
    std::shared_ptr<scheduler::Engine> engine;
    std::shared_ptr<class GenerationStream> stream;
    BuiltRequest built;
  };
  Admission Admit(grpc::CallbackServerContext* context, const grpc::ByteBuffer& request,
                  CallTracker& call);

 private:
  struct Model {
    std::shared_ptr<scheduler::Engine> engine;
    std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer;
    std::string path;
    RequestLimits limits;
  };
  Model CurrentModel() const;
  // The API key check every method starts with; fills the key's name into the call's record.
  grpc::Status Authenticate(grpc::CallbackServerContext* context, CallTracker& call) const;
  // Authentication and parsing, shared by the unary methods that are not generation.
  grpc::Status Accept(grpc::CallbackServerContext* context, const grpc::ByteBuffer& request,
                      google::protobuf::Message* message, CallTracker& call) const;
  std::string NewRequestId();
  void NameReplica(grpc::CallbackServerContext* context) const;

  const RequestLimits base_limits_;
  const std::string device_;
  const std::string replica_name_;
  const Authenticator* const authenticator_;
  const CallObservers observers_;
  std::atomic<ServingState> state_{ServingState::kLoading};
  std::atomic<uint64_t> next_request_{1};
  mutable std::mutex mu_;  // guards model_ (set once)
  Model model_;
};

}  // namespace ropewire::server
