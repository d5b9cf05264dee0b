#include "server/inference_service.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "model/model_info.h"
#include "server/generation_stream.h"
#include "server/model_info_message.h"
#include "server/status_mapping.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

grpc::Status StillLoading() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
}

// Unary Generate: finishes when the engine reports the end, or on cancellation.
class GenerateReactor : public grpc::ServerUnaryReactor {
 public:
  GenerateReactor(InferenceService::Admission admission, v1::GenerateResponse* response)
      : engine_(std::move(admission.engine)),
        stream_(std::move(admission.stream)),
        response_(response) {}

  void Start(scheduler::GenerationRequest request) {
    stream_->SetListener([this] { OnProgress(); });
    absl::Status submitted = engine_->Submit(std::move(request), stream_);
    if (!submitted.ok()) {
      spdlog::info("request {}: rejected: {}", stream_->request_id(),
                   std::string(submitted.message()));
      FinishOnce(ToGrpcStatus(submitted));
    }
  }

  void OnCancel() override {
    engine_->Abort(stream_->request_id());
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  void OnDone() override {
    stream_->Detach();
    delete this;
  }

 private:
  void OnProgress() {
    if (!stream_->finished()) return;
    grpc::Status status = stream_->FinalStatus();
    if (status.ok()) stream_->FillResponse(response_);
    FinishOnce(status);
  }
  void FinishOnce(const grpc::Status& status) {
    if (finished_.exchange(true)) return;
    Finish(status);
  }

  std::shared_ptr<scheduler::Engine> engine_;
  std::shared_ptr<GenerationStream> stream_;
  v1::GenerateResponse* response_;
  std::atomic<bool> finished_{false};
};

// Server-streaming GenerateStream: one write in flight; what accumulates meanwhile is coalesced
// into the next message.
class GenerateStreamReactor : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
 public:
  explicit GenerateStreamReactor(InferenceService::Admission admission)
      : engine_(std::move(admission.engine)), stream_(std::move(admission.stream)) {}

  void Start(scheduler::GenerationRequest request) {
    stream_->SetListener([this] { MaybeWrite(); });
    absl::Status submitted = engine_->Submit(std::move(request), stream_);
    if (!submitted.ok()) {
      spdlog::info("request {}: rejected: {}", stream_->request_id(),
                   std::string(submitted.message()));
      FinishOnce(ToGrpcStatus(submitted));
    }
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_in_flight_ = false;
      if (!ok) broken_ = true;
    }
    if (ok) {
      MaybeWrite();
      return;
    }
    // The client is gone: stop generating for it.
    engine_->Abort(stream_->request_id());
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was broken"));
  }
  void OnCancel() override {
    engine_->Abort(stream_->request_id());
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  void OnDone() override {
    stream_->Detach();
    delete this;
  }

 private:
  void MaybeWrite() {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (write_in_flight_ || finish_called_ || broken_) return;
      if (!stream_->TakeChunk(&message_, &last)) return;
      write_in_flight_ = true;
      if (last) finish_called_ = true;
    }
    if (!last) {
      StartWrite(&message_);
      return;
    }
    const grpc::Status status = stream_->FinalStatus();
    if (status.ok()) {
      StartWriteAndFinish(&message_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }
  void FinishOnce(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_called_) return;
      finish_called_ = true;
    }
    Finish(status);
  }

  std::shared_ptr<scheduler::Engine> engine_;
  std::shared_ptr<GenerationStream> stream_;
  std::mutex mu_;
  v1::GenerateStreamResponse message_;
  bool write_in_flight_ = false;
  bool finish_called_ = false;
  bool broken_ = false;
};

}  // namespace

InferenceService::InferenceService(RequestLimits limits, std::string device,
                                   std::string replica_name)
    : limits_(limits), device_(std::move(device)), replica_name_(std::move(replica_name)) {}

void InferenceService::NameReplica(grpc::CallbackServerContext* context) const {
  if (!replica_name_.empty()) context->AddInitialMetadata(kReplicaMetadataKey, replica_name_);
}

void InferenceService::SetModel(std::shared_ptr<scheduler::Engine> engine,
                                std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer,
                                std::string model_path) {
  std::lock_guard<std::mutex> lock(mu_);
  engine_ = std::move(engine);
  tokenizer_ = std::move(tokenizer);
  model_path_ = std::move(model_path);
}

std::string InferenceService::NewRequestId() {
  static const uint64_t prefix = std::random_device{}();
  return absl::StrCat("rw-", absl::Hex(prefix & 0xffffff), "-", next_request_.fetch_add(1));
}

InferenceService::Admission InferenceService::Admit(grpc::CallbackServerContext* context,
                                                    const v1::GenerateRequest& request) {
  Admission a;
  const ServingState state = state_.load();
  if (state == ServingState::kLoading) {
    a.status = StillLoading();
    return a;
  }
  std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    a.engine = engine_;
    tokenizer = tokenizer_;
  }
  auto built = BuildRequest(request, tokenizer.get(), limits_);
  if (!built.ok()) {
    a.status = ToGrpcStatus(built.status());
    spdlog::info("request {}: rejected: {}", request.request_id(),
                 std::string(built.status().message()));
    return a;
  }
  a.built = std::move(*built);
  if (a.built.request.request_id.empty()) a.built.request.request_id = NewRequestId();
  // The client's deadline ends the request in the engine too (gRPC also cancels the call).
  const auto deadline = context->deadline();
  if (deadline < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    a.built.request.deadline =
        scheduler::Clock::now() + (deadline - std::chrono::system_clock::now());
  }
  a.stream = std::make_shared<GenerationStream>(
      a.built.request.request_id, tokenizer ? tokenizer->tokenizer.get() : nullptr,
      a.built.skip_special_tokens, a.built.stop_strings, a.built.request.sampling.logprobs > 0);
  spdlog::debug("request {}: {} prompt tokens, max_tokens {}", a.built.request.request_id,
                a.built.request.prompt.size(), a.built.request.max_tokens);
  return a;
}

grpc::ServerUnaryReactor* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                     const v1::GenerateRequest* request,
                                                     v1::GenerateResponse* response) {
  NameReplica(context);
  Admission admission = Admit(context, *request);
  if (!admission.status.ok()) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(admission.status);
    return reactor;
  }
  scheduler::GenerationRequest built = std::move(admission.built.request);
  auto* reactor = new GenerateReactor(std::move(admission), response);
  reactor->Start(std::move(built));
  return reactor;
}

grpc::ServerWriteReactor<v1::GenerateStreamResponse>* InferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  NameReplica(context);
  Admission admission = Admit(context, *request);
  if (!admission.status.ok()) {
    // A reactor that only reports the error.
    class Rejected : public grpc::ServerWriteReactor<v1::GenerateStreamResponse> {
     public:
      explicit Rejected(const grpc::Status& status) { Finish(status); }
      void OnDone() override { delete this; }
    };
    return new Rejected(admission.status);
  }
  scheduler::GenerationRequest built = std::move(admission.built.request);
  auto* reactor = new GenerateStreamReactor(std::move(admission));
  reactor->Start(std::move(built));
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const v1::TokenizeRequest* request,
                                                     v1::TokenizeResponse* response) {
  auto* reactor = context->DefaultReactor();
  const ServingState state = state_.load();
  if (state == ServingState::kLoading) {
    reactor->Finish(StillLoading());
    return reactor;
  }
  std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokenizer = tokenizer_;
  }
  if (!tokenizer) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "the model is served without a tokenizer"));
    return reactor;
  }
  auto ids = tokenizer->tokenizer->Encode(
      request->text(), request->has_add_special_tokens() ? request->add_special_tokens() : true);
  if (!ids.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("text: ", ids.status().message())));
    return reactor;
  }
  for (int32_t id : *ids) response->add_token_ids(id);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const v1::GetModelInfoRequest*,
                                                         v1::ModelInfo* response) {
  auto* reactor = context->DefaultReactor();
  std::shared_ptr<scheduler::Engine> engine;
  std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer;
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine = engine_;
    tokenizer = tokenizer_;
    path = model_path_;
  }
  if (!engine) {
    reactor->Finish(StillLoading());
    return reactor;
  }
  FillModelInfo(*engine, tokenizer.get(), device_, path, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetServerStats(grpc::CallbackServerContext* context,
                                                           const v1::GetServerStatsRequest*,
                                                           v1::ServerStats* response) {
  NameReplica(context);
  auto* reactor = context->DefaultReactor();
  const ServingState state = state_.load();
  response->set_state(state == ServingState::kLoading   ? "loading"
                      : state == ServingState::kServing ? "serving"
                                                        : "draining");
  std::shared_ptr<scheduler::Engine> engine;
  {
    std::lock_guard<std::mutex> lock(mu_);
    engine = engine_;
  }
  if (engine) {
    const scheduler::EngineStats stats = engine->Stats();
    response->set_waiting_requests(stats.num_waiting);
    response->set_running_requests(stats.num_running);
    response->set_kv_cache_blocks(stats.num_blocks);
    response->set_kv_cache_free_blocks(stats.num_free_blocks);
    response->set_steps(stats.steps);
    response->set_generated_tokens(stats.generated_tokens);
    response->set_prompt_tokens(stats.prompt_tokens);
    response->set_prefix_cache_hit_tokens(stats.prefix_hit_tokens);
    response->set_preemptions(stats.preemptions);
    response->set_model_seconds(stats.execute_seconds);
    response->set_scheduler_seconds(stats.schedule_seconds);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace ropewire::server
