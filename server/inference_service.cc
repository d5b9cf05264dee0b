#include "server/inference_service.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "model/model_info.h"
#include "server/generate_reactors.h"
#include "server/generation_stream.h"
#include "server/message_codec.h"
#include "server/model_info_message.h"
#include "server/status_mapping.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

grpc::Status StillLoading() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
}

// The longest token string of the vocabulary, in bytes: no token covers more text than that
// (byte-level and SentencePiece token strings are at least as long as the text they stand for).
int64_t LongestTokenBytes(const tokenizer::Tokenizer& tokenizer) {
  size_t longest = 1;
  for (int32_t id = 0; id < tokenizer.id_limit(); ++id) {
    if (const std::string* token = tokenizer.IdToToken(id))
      longest = std::max(longest, token->size());
  }
  return static_cast<int64_t>(longest);
}

}  // namespace

const char* ServingStateName(ServingState state) {
  switch (state) {
    case ServingState::kLoading: return "loading";
    case ServingState::kServing: return "serving";
    case ServingState::kDraining: return "draining";
  }
  return "unknown";
}

InferenceService::InferenceService(RequestLimits limits, std::string device,
                                   std::string replica_name, const Authenticator* authenticator,
                                   CallObservers observers)
    : base_limits_(limits),
      device_(std::move(device)),
      replica_name_(std::move(replica_name)),
      authenticator_(authenticator),
      observers_(observers) {
  model_.limits = limits;
}

void InferenceService::NameReplica(grpc::CallbackServerContext* context) const {
  if (!replica_name_.empty()) context->AddInitialMetadata(kReplicaMetadataKey, replica_name_);
}

void InferenceService::SetModel(std::shared_ptr<scheduler::Engine> engine,
                                std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer,
                                std::string model_path) {
  RequestLimits limits = base_limits_;
  if (tokenizer && tokenizer->tokenizer && engine && limits.max_prompt_bytes == 0) {
    // A text prompt longer than this holds more tokens than the model's whole length, so it is
    // refused before the tokenizer reads it.
    limits.max_prompt_bytes = int64_t(engine->scheduler_config().max_model_len) *
                              LongestTokenBytes(*tokenizer->tokenizer);
  }
  std::lock_guard<std::mutex> lock(mu_);
  model_ = {std::move(engine), std::move(tokenizer), std::move(model_path), limits};
}

InferenceService::Model InferenceService::CurrentModel() const {
  std::lock_guard<std::mutex> lock(mu_);
  return model_;
}

std::string InferenceService::NewRequestId() {
  static const uint64_t prefix = std::random_device{}();
  return absl::StrCat("rw-", absl::Hex(prefix & 0xffffff), "-", next_request_.fetch_add(1));
}

grpc::Status InferenceService::Authenticate(grpc::CallbackServerContext* context,
                                            CallTracker& call) const {
  if (authenticator_ == nullptr || !authenticator_->enabled()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  absl::string_view value;
  if (it != metadata.end()) value = absl::string_view(it->second.data(), it->second.size());
  absl::StatusOr<std::string> name =
      authenticator_->Authenticate(it == metadata.end() ? nullptr : &value);
  if (!name.ok()) return ToGrpcStatus(name.status());
  call.record().key_name = *name;
  return grpc::Status::OK;
}

grpc::Status InferenceService::Accept(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer& request,
                                      google::protobuf::Message* message, CallTracker& call) const {
  if (grpc::Status auth = Authenticate(context, call); !auth.ok()) return auth;
  return ToGrpcStatus(ParseRequest(request, message));
}

InferenceService::Admission InferenceService::Admit(grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer& buffer,
                                                    CallTracker& call) {
  Admission a;
  v1::GenerateRequest request;
  if (a.status = Accept(context, buffer, &request, call); !a.status.ok()) return a;
  call.record().request_id = request.request_id();
  if (state_.load() == ServingState::kLoading) {
    a.status = StillLoading();
    return a;
  }
  Model model = CurrentModel();
  a.engine = model.engine;
  auto built = BuildRequest(request, model.tokenizer.get(), model.limits);
  if (!built.ok()) {
    a.status = ToGrpcStatus(built.status());
    return a;
  }
  a.built = std::move(*built);
  if (a.built.request.request_id.empty()) a.built.request.request_id = NewRequestId();
  call.record().request_id = a.built.request.request_id;
  call.record().prompt_tokens = static_cast<int>(a.built.request.prompt.size());
  // The client's deadline ends the request in the engine too (gRPC also cancels the call).
  const auto deadline = context->deadline();
  if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    a.built.request.deadline =
        scheduler::Clock::now() + (deadline - std::chrono::system_clock::now());
  }
  const tokenizer::Tokenizer* text = model.tokenizer ? model.tokenizer->tokenizer.get() : nullptr;
  a.stream = std::make_shared<GenerationStream>(a.built.request.request_id, text,
                                                a.built.skip_special_tokens, a.built.stop_strings,
                                                a.built.request.sampling.logprobs > 0);
  a.stream->SetTiming(call.record().received, observers_.metrics);
  return a;
}

grpc::ServerUnaryReactor* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  NameReplica(context);
  auto call = std::make_unique<CallTracker>(observers_, "Generate", *context);
  Admission admission = Admit(context, *request, *call);
  if (!admission.status.ok()) return FinishUnary(context, admission.status, *call);
  return StartGenerate(context, std::move(admission), std::move(call), response);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* InferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  NameReplica(context);
  auto call = std::make_unique<CallTracker>(observers_, "GenerateStream", *context);
  Admission admission = Admit(context, *request, *call);
  if (!admission.status.ok()) return RejectStream(admission.status, std::move(call));
  return StartGenerateStream(context, std::move(admission), std::move(call));
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request_buffer,
                                                     grpc::ByteBuffer* response_buffer) {
  CallTracker call(observers_, "Tokenize", *context);
  v1::TokenizeRequest request;
  if (grpc::Status s = Accept(context, *request_buffer, &request, call); !s.ok())
    return FinishUnary(context, s, call);
  if (state_.load() == ServingState::kLoading) return FinishUnary(context, StillLoading(), call);
  const Model model = CurrentModel();
  if (!model.tokenizer) {
    return FinishUnary(context,
                       grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                    "the model is served without a tokenizer"),
                       call);
  }
  auto ids = model.tokenizer->tokenizer->Encode(
      request.text(), request.has_add_special_tokens() ? request.add_special_tokens() : true);
  if (!ids.ok()) {
    return FinishUnary(context,
                       grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    absl::StrCat("text: ", ids.status().message())),
                       call);
  }
  v1::TokenizeResponse response;
  for (int32_t id : *ids) response.add_token_ids(id);
  call.record().prompt_tokens = static_cast<int>(ids->size());
  return FinishUnary(context, SerializeResponse(response, response_buffer), call);
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_buffer,
                                                         grpc::ByteBuffer* response_buffer) {
  CallTracker call(observers_, "GetModelInfo", *context);
  v1::GetModelInfoRequest request;
  if (grpc::Status s = Accept(context, *request_buffer, &request, call); !s.ok())
    return FinishUnary(context, s, call);
  const Model model = CurrentModel();
  if (!model.engine) return FinishUnary(context, StillLoading(), call);
  v1::ModelInfo response;
  FillModelInfo(*model.engine, model.tokenizer.get(), device_, model.path, &response);
  return FinishUnary(context, SerializeResponse(response, response_buffer), call);
}

grpc::ServerUnaryReactor* InferenceService::GetServerStats(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request_buffer,
                                                           grpc::ByteBuffer* response_buffer) {
  NameReplica(context);
  CallTracker call(observers_, "GetServerStats", *context);
  v1::GetServerStatsRequest request;
  if (grpc::Status s = Accept(context, *request_buffer, &request, call); !s.ok())
    return FinishUnary(context, s, call);
  v1::ServerStats response;
  response.set_state(ServingStateName(state_.load()));
  if (const Model model = CurrentModel(); model.engine) {
    const scheduler::EngineStats stats = model.engine->Stats();
    response.set_waiting_requests(stats.num_waiting);
    response.set_running_requests(stats.num_running);
    response.set_kv_cache_blocks(stats.num_blocks);
    response.set_kv_cache_free_blocks(stats.num_free_blocks);
    response.set_steps(stats.steps);
    response.set_generated_tokens(stats.generated_tokens);
    response.set_prompt_tokens(stats.prompt_tokens);
    response.set_prefix_cache_hit_tokens(stats.prefix_hit_tokens);
    response.set_preemptions(stats.preemptions);
    response.set_model_seconds(stats.execute_seconds);
    response.set_scheduler_seconds(stats.schedule_seconds);
  }
  return FinishUnary(context, SerializeResponse(response, response_buffer), call);
}

}  // namespace ropewire::server
