// The server's Prometheus metrics, named like vLLM's (vllm:X is ropewire_X here; Prometheus
// keeps ':' for recording rules). Engine state (running and waiting requests, KV cache,
// preemptions, prefix cache, generated tokens) is read from the engine when scraped, so it costs
// nothing per token; per-request and per-step histograms are observed as things happen.
//
// Latency buckets run from 100 µs to minutes: a GPU's sub-millisecond steps and inter-token
// gaps and a CPU's tens of milliseconds both land in buckets of their own.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "scheduler/engine.h"
#include "server/call_record.h"

namespace ropewire::server {

class ServerMetrics {
 public:
  ServerMetrics();

  // Where scrapes read the engine's state; it returns nothing while the model loads.
  void SetEngineSource(std::function<std::optional<scheduler::EngineStats>()> source);

  // Engine thread: after every step (EngineConfig::on_step).
  void ObserveStep(const scheduler::StepRecord& step);
  // Engine thread: a request's first generated token, and each later token's gap.
  void ObserveFirstToken(double seconds_since_received, int prompt_tokens);
  void ObserveInterToken(double seconds);
  // A finished ropewire.v1.Inference call (any method, any code).
  void RecordCall(const CallRecord& record);

  // The Prometheus text exposition format (version 0.0.4).
  std::string Scrape() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Histogram& time_to_first_token_;
  prometheus::Histogram& inter_token_latency_;
  prometheus::Histogram& e2e_latency_;
  prometheus::Histogram& queue_time_;
  prometheus::Histogram& request_prompt_tokens_;
  prometheus::Histogram& request_generation_tokens_;
  prometheus::Histogram& step_seconds_;
  prometheus::Histogram& model_seconds_;
  prometheus::Histogram& step_tokens_;

  mutable std::mutex source_mu_;
  std::function<std::optional<scheduler::EngineStats>()> engine_source_;
};

}  // namespace ropewire::server
