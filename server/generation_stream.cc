#include "server/generation_stream.h"

#include "absl/strings/str_cat.h"
#include "server/status_mapping.h"

namespace ropewire::server {

using scheduler::FinishReason;

GenerationStream::GenerationStream(std::string request_id, const tokenizer::Tokenizer* tokenizer,
                                   bool skip_special_tokens, std::vector<std::string> stop_strings,
                                   bool logprobs)
    : request_id_(std::move(request_id)), logprobs_(logprobs), stop_strings_(stop_strings) {
  if (tokenizer != nullptr)
    streamer_.emplace(*tokenizer, skip_special_tokens, std::move(stop_strings));
}

void GenerationStream::AppendToken(const model::SampledToken& token) {
  pending_tokens_.push_back(token.token);
  tokens_.push_back(token.token);
  if (!logprobs_) return;
  v1::GeneratedTokenLogprobs lp;
  lp.set_token_id(token.token);
  lp.set_logprob(token.logprob);
  for (const auto& alt : token.top) {
    auto* entry = lp.add_top();
    entry->set_token_id(alt.token);
    entry->set_logprob(alt.logprob);
  }
  pending_logprobs_.push_back(lp);
  logprobs_all_.push_back(std::move(lp));
}

void GenerationStream::Finalize(const scheduler::RequestOutput& output) {
  finished_ = true;
  usage_.set_prompt_tokens(output.prompt_tokens);
  usage_.set_completion_tokens(static_cast<uint32_t>(tokens_.size()));
  usage_.set_cached_prompt_tokens(output.cached_prompt_tokens);
  switch (output.reason) {
    case FinishReason::kStopToken:
      finish_reason_ = v1::FINISH_REASON_STOP;
      finish_name_ = "stop";
      break;
    case FinishReason::kStopString:
      finish_reason_ = v1::FINISH_REASON_STOP_STRING;
      finish_name_ = "stop_string";
      break;
    case FinishReason::kLength:
      finish_reason_ = v1::FINISH_REASON_LENGTH;
      finish_name_ = "length";
      break;
    case FinishReason::kCancelled:
      finish_reason_ = v1::FINISH_REASON_CANCELLED;
      finish_name_ = "cancelled";
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
      break;
    case FinishReason::kDeadline:
      finish_reason_ = v1::FINISH_REASON_CANCELLED;
      finish_name_ = "deadline";
      final_status_ =
          grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the request's deadline passed");
      break;
    case FinishReason::kError:
    case FinishReason::kNone:
      finish_name_ = "error";
      // The engine's status keeps its code: a request the scheduler refused after Submit()
      // accepted it is RESOURCE_EXHAUSTED, like one Submit() refused itself.
      final_status_ = output.status.ok()
                          ? grpc::Status(grpc::StatusCode::INTERNAL, "generation failed")
                          : ToGrpcStatus(output.status);
      break;
  }
}

void GenerationStream::SetTiming(ServerClock::time_point received, ServerMetrics* metrics) {
  std::lock_guard<std::mutex> lock(mu_);
  received_ = received;
  metrics_ = metrics;
}

void GenerationStream::ObserveTiming(const scheduler::RequestOutput& output) {
  if (!queue_seconds_ && output.first_scheduled) {
    queue_seconds_ =
        std::chrono::duration<double>(*output.first_scheduled - output.submitted).count();
  }
  if (output.new_tokens.empty()) return;
  const ServerClock::time_point now = ServerClock::now();
  if (!first_token_at_) {
    first_token_at_ = now;
    if (metrics_ != nullptr) {
      metrics_->ObserveFirstToken(std::chrono::duration<double>(now - received_).count(),
                                  output.prompt_tokens);
    }
  } else if (metrics_ != nullptr) {
    // Tokens that arrive together share the gap since the previous ones.
    const double gap = std::chrono::duration<double>(now - last_token_at_).count() /
                       static_cast<double>(output.new_tokens.size());
    for (size_t i = 0; i < output.new_tokens.size(); ++i) metrics_->ObserveInterToken(gap);
  }
  last_token_at_ = now;
}

bool GenerationStream::OnOutput(const scheduler::RequestOutput& output) {
  bool keep_going = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ObserveTiming(output);
    for (const auto& token : output.new_tokens) {
      AppendToken(token);
      if (!streamer_ || !keep_going) continue;
      auto piece = streamer_->Step(token.token);
      if (!piece.ok()) continue;  // ids come from the model's own vocabulary
      pending_text_ += piece->text;
      text_ += piece->text;
      if (piece->stop_index) {
        stop_string_ = stop_strings_[*piece->stop_index];
        keep_going = false;
      }
    }
    if (output.finished) {
      if (streamer_ && stop_string_.empty()) {
        auto rest = streamer_->Finish();
        pending_text_ += rest.text;
        text_ += rest.text;
        if (rest.stop_index) stop_string_ = stop_strings_[*rest.stop_index];
      }
      scheduler::RequestOutput final_output = output;
      if (!stop_string_.empty() && output.reason != FinishReason::kCancelled) {
        final_output.reason = FinishReason::kStopString;
      }
      Finalize(final_output);
    }
  }
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_();
  return keep_going;
}

void GenerationStream::SetListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

void GenerationStream::Detach() {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = nullptr;
}

bool GenerationStream::TakeChunk(v1::GenerateStreamResponse* chunk, bool* last) {
  std::lock_guard<std::mutex> lock(mu_);
  *last = false;
  const bool has_data = !pending_tokens_.empty() || !pending_text_.empty();
  const bool finishing = finished_ && !finish_taken_;
  if (!has_data && !finishing) return false;
  chunk->Clear();
  chunk->set_request_id(request_id_);
  chunk->set_text(std::move(pending_text_));
  pending_text_.clear();
  for (int32_t id : pending_tokens_) chunk->add_token_ids(id);
  pending_tokens_.clear();
  for (auto& lp : pending_logprobs_) *chunk->add_logprobs() = std::move(lp);
  pending_logprobs_.clear();
  if (finishing) {
    finish_taken_ = true;
    *last = true;
    chunk->set_finish_reason(finish_reason_);
    chunk->set_stop_string(stop_string_);
    *chunk->mutable_usage() = usage_;
  }
  return true;
}

bool GenerationStream::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return finished_;
}

void GenerationStream::FillResponse(v1::GenerateResponse* response) const {
  std::lock_guard<std::mutex> lock(mu_);
  response->set_request_id(request_id_);
  response->set_text(text_);
  for (int32_t id : tokens_) response->add_token_ids(id);
  response->set_finish_reason(finish_reason_);
  response->set_stop_string(stop_string_);
  *response->mutable_usage() = usage_;
  for (const auto& lp : logprobs_all_) *response->add_logprobs() = lp;
}

void GenerationStream::FillRecord(CallRecord* record) const {
  std::lock_guard<std::mutex> lock(mu_);
  record->request_id = request_id_;
  record->completion_tokens = static_cast<int>(tokens_.size());
  record->queue_seconds = queue_seconds_;
  if (first_token_at_) {
    record->ttft_seconds = std::chrono::duration<double>(*first_token_at_ - received_).count();
  }
  if (!finished_) return;
  record->finish_reason = finish_name_;
  record->prompt_tokens = static_cast<int>(usage_.prompt_tokens());
  record->cached_prompt_tokens = static_cast<int>(usage_.cached_prompt_tokens());
}

grpc::Status GenerationStream::FinalStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return final_status_;
}

}  // namespace ropewire::server
