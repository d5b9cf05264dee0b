#include "server/generate_reactors.h"

#include <chrono>
#include <mutex>

#include "server/generation_stream.h"
#include "server/message_codec.h"
#include "server/status_mapping.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

// What the client sees when gRPC cancels its call: its own deadline, or a cancellation.
grpc::Status CancelledStatus(const grpc::CallbackServerContext& context) {
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the call's deadline passed");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
}

// The parts both generation reactors share: submission, abort, and the call's record.
class GenerationCall {
 public:
  GenerationCall(grpc::CallbackServerContext* context, InferenceService::Admission admission,
                 std::unique_ptr<CallTracker> call)
      : context_(context),
        engine_(std::move(admission.engine)),
        stream_(std::move(admission.stream)),
        call_(std::move(call)) {}

  // Submits; on refusal returns the status to finish with.
  grpc::Status Submit(scheduler::GenerationRequest request, std::function<void()> listener) {
    stream_->SetListener(std::move(listener));
    absl::Status submitted = engine_->Submit(std::move(request), stream_);
    if (!submitted.ok()) {
      spdlog::debug("request {}: refused: {}", stream_->request_id(),
                    std::string(submitted.message()));
      return ToGrpcStatus(submitted);
    }
    submitted_ = true;
    return grpc::Status::OK;
  }
  void Abort() { engine_->Abort(stream_->request_id()); }
  GenerationStream& stream() { return *stream_; }
  const grpc::CallbackServerContext& context() const { return *context_; }

  // Once gRPC is done with the call: no more listener calls, then the record.
  void Done(const grpc::Status& status) {
    stream_->Detach();
    CallRecord& record = call_->record();
    stream_->FillRecord(&record);
    if (submitted_ && record.finish_reason.empty()) {
      // Ended by the client before the engine reported the end.
      record.finish_reason =
          status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? "deadline" : "cancelled";
    }
    call_->Finish(status);
  }

 private:
  grpc::CallbackServerContext* context_;
  std::shared_ptr<scheduler::Engine> engine_;
  std::shared_ptr<GenerationStream> stream_;
  std::unique_ptr<CallTracker> call_;
  bool submitted_ = false;
};

// Unary Generate: finishes when the engine reports the end, or on cancellation.
class GenerateReactor : public grpc::ServerUnaryReactor {
 public:
  GenerateReactor(grpc::CallbackServerContext* context, InferenceService::Admission admission,
                  std::unique_ptr<CallTracker> call, grpc::ByteBuffer* response)
      : call_(context, std::move(admission), std::move(call)), response_(response) {}

  void Start(scheduler::GenerationRequest request) {
    grpc::Status submitted = call_.Submit(std::move(request), [this] { OnProgress(); });
    if (!submitted.ok()) FinishOnce(submitted);
  }

  void OnCancel() override {
    call_.Abort();
    FinishOnce(CancelledStatus(call_.context()));
  }
  void OnDone() override {
    call_.Done(final_status());
    delete this;
  }

 private:
  void OnProgress() {
    if (!call_.stream().finished()) return;
    grpc::Status status = call_.stream().FinalStatus();
    if (status.ok()) {
      v1::GenerateResponse response;
      call_.stream().FillResponse(&response);
      status = SerializeResponse(response, response_);
    }
    FinishOnce(status);
  }
  void FinishOnce(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
      final_status_ = status;
    }
    Finish(status);
  }
  grpc::Status final_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return final_status_;
  }

  GenerationCall call_;
  grpc::ByteBuffer* response_;
  std::mutex mu_;
  bool finished_ = false;
  grpc::Status final_status_;
};

// Server-streaming GenerateStream: one write in flight; what accumulates meanwhile is coalesced
// into the next message.
class GenerateStreamReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  GenerateStreamReactor(grpc::CallbackServerContext* context, InferenceService::Admission admission,
                        std::unique_ptr<CallTracker> call)
      : call_(context, std::move(admission), std::move(call)) {}

  void Start(scheduler::GenerationRequest request) {
    grpc::Status submitted = call_.Submit(std::move(request), [this] { MaybeWrite(); });
    if (!submitted.ok()) FinishOnce(submitted);
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
    call_.Abort();
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was broken"));
  }
  void OnCancel() override {
    call_.Abort();
    FinishOnce(CancelledStatus(call_.context()));
  }
  void OnDone() override {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      status = final_status_;
    }
    call_.Done(status);
    delete this;
  }

 private:
  void MaybeWrite() {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (write_in_flight_ || finish_called_ || broken_) return;
      if (!call_.stream().TakeChunk(&message_, &last)) return;
      write_in_flight_ = true;
      if (last) {
        finish_called_ = true;
        final_status_ = call_.stream().FinalStatus();
      }
    }
    const grpc::Status serialized = SerializeResponse(message_, &buffer_);
    if (!last && serialized.ok()) {
      StartWrite(&buffer_);
      return;
    }
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!serialized.ok()) final_status_ = serialized;
      status = final_status_;
    }
    if (status.ok()) {
      StartWriteAndFinish(&buffer_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }
  void FinishOnce(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_called_) return;
      finish_called_ = true;
      final_status_ = status;
    }
    Finish(status);
  }

  GenerationCall call_;
  std::mutex mu_;
  v1::GenerateStreamResponse message_;
  grpc::ByteBuffer buffer_;
  bool write_in_flight_ = false;
  bool finish_called_ = false;
  bool broken_ = false;
  grpc::Status final_status_;
};

class RejectedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  RejectedStream(const grpc::Status& status, std::unique_ptr<CallTracker> call)
      : status_(status), call_(std::move(call)) {
    Finish(status);
  }
  void OnDone() override {
    call_->Finish(status_);
    delete this;
  }

 private:
  const grpc::Status status_;
  std::unique_ptr<CallTracker> call_;
};

}  // namespace

grpc::ServerUnaryReactor* StartGenerate(grpc::CallbackServerContext* context,
                                        InferenceService::Admission admission,
                                        std::unique_ptr<CallTracker> call,
                                        grpc::ByteBuffer* response) {
  scheduler::GenerationRequest request = std::move(admission.built.request);
  auto* reactor = new GenerateReactor(context, std::move(admission), std::move(call), response);
  reactor->Start(std::move(request));
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* StartGenerateStream(
    grpc::CallbackServerContext* context, InferenceService::Admission admission,
    std::unique_ptr<CallTracker> call) {
  scheduler::GenerationRequest request = std::move(admission.built.request);
  auto* reactor = new GenerateStreamReactor(context, std::move(admission), std::move(call));
  reactor->Start(std::move(request));
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* RejectStream(const grpc::Status& status,
                                                         std::unique_ptr<CallTracker> call) {
  return new RejectedStream(status, std::move(call));
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const grpc::Status& status, CallTracker& call) {
  call.Finish(status);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace ropewire::server
