// The client's view of one generation, built on the engine thread from engine outputs: token
// ids, text deltas (valid UTF-8, stop strings held back and cut), log-probabilities, and the
// finish. Reactors on gRPC threads take what has accumulated — several steps' worth in one
// message when the client reads slower than the model generates.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "ropewire/v1/inference.pb.h"
#include "scheduler/engine.h"
#include "server/call_record.h"
#include "server/metrics.h"
#include "tokenizer/streaming.h"

namespace ropewire::server {

class GenerationStream : public scheduler::OutputSink {
 public:
  // `tokenizer` may be null (token ids only); then `stop_strings` must be empty.
  GenerationStream(std::string request_id, const tokenizer::Tokenizer* tokenizer,
                   bool skip_special_tokens, std::vector<std::string> stop_strings, bool logprobs);

  // Before Submit(): when the call arrived (the start of its time to first token), and the
  // metrics that see its first token and inter-token gaps (null: none).
  void SetTiming(ServerClock::time_point received, ServerMetrics* metrics);

  // Engine thread.
  bool OnOutput(const scheduler::RequestOutput& output) override;

  // The listener runs on the engine thread after new output arrives. Detach() clears it and
  // waits for a running call to return, so a reactor can be destroyed right after.
  void SetListener(std::function<void()> listener);
  void Detach();

  // Moves everything produced since the last call into `chunk`. Returns false when there is
  // nothing to send; `*last` is true once the chunk carries the finish.
  bool TakeChunk(v1::GenerateStreamResponse* chunk, bool* last);
  bool finished() const;
  // For unary calls, once finished(): the whole response, and the status to finish with.
  void FillResponse(v1::GenerateResponse* response) const;
  grpc::Status FinalStatus() const;
  const std::string& request_id() const { return request_id_; }
  // Token counts, finish reason (once finished), queue time and time to first token.
  void FillRecord(CallRecord* record) const;

 private:
  void AppendToken(const model::SampledToken& token);
  void Finalize(const scheduler::RequestOutput& output);
  void ObserveTiming(const scheduler::RequestOutput& output);

  const std::string request_id_;
  const bool logprobs_;
  std::optional<tokenizer::TextStreamer> streamer_;  // engine thread only
  std::vector<std::string> stop_strings_;

  mutable std::mutex mu_;
  // Not yet taken by the reactor.
  std::string pending_text_;
  std::vector<int32_t> pending_tokens_;
  std::vector<v1::GeneratedTokenLogprobs> pending_logprobs_;
  bool finish_taken_ = false;
  // Whole generation.
  std::string text_;
  std::vector<int32_t> tokens_;
  std::vector<v1::GeneratedTokenLogprobs> logprobs_all_;
  bool finished_ = false;
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  std::string stop_string_;
  v1::Usage usage_;
  grpc::Status final_status_;
  std::string finish_name_;  // for logs and metrics: stop, stop_string, length, cancelled, ...

  // Timing (written on the engine thread, read under mu_).
  ServerClock::time_point received_ = ServerClock::now();
  ServerMetrics* metrics_ = nullptr;
  std::optional<ServerClock::time_point> first_token_at_;
  ServerClock::time_point last_token_at_;
  std::optional<double> queue_seconds_;

  std::mutex listener_mu_;
  std::function<void()> listener_;
};

}  // namespace ropewire::server
