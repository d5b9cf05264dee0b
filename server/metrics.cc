#include "server/metrics.h"

#include "prometheus/text_serializer.h"
#include "proto/status_names.h"

namespace ropewire::server {
namespace {

using prometheus::Histogram;

// 100 µs to 5 minutes in 1-2.5-5 steps.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,   0.5,     1,      2.5,   5,      10,    25,   50,    100,  300};
  return buckets;
}

const Histogram::BucketBoundaries& TokenCountBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
  return buckets;
}

const Histogram::BucketBoundaries& StepTokenBuckets() {
  static const Histogram::BucketBoundaries buckets = {1,   2,   4,    8,    16,   32,   64,   128,
                                                      256, 512, 1024, 2048, 4096, 8192, 16384};
  return buckets;
}

Histogram& AddHistogram(prometheus::Registry& registry, const std::string& name,
                        const std::string& help, const Histogram::BucketBoundaries& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add({}, buckets);
}

prometheus::MetricFamily Single(const std::string& name, const std::string& help,
                                prometheus::MetricType type, double value) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(metric);
  return family;
}

std::vector<prometheus::MetricFamily> EngineFamilies(const scheduler::EngineStats& s) {
  using prometheus::MetricType;
  const double usage =
      s.num_blocks > 0 ? 1.0 - static_cast<double>(s.num_free_blocks) / s.num_blocks : 0.0;
  return {
      Single("ropewire_num_requests_running", "Requests in the running batch.", MetricType::Gauge,
             s.num_running),
      Single("ropewire_num_requests_waiting", "Requests waiting to be scheduled.",
             MetricType::Gauge, s.num_waiting),
      Single("ropewire_kv_cache_usage_perc",
             "Fraction of KV cache blocks in use, from 0 to 1 (as vLLM's).", MetricType::Gauge,
             usage),
      Single("ropewire_kv_cache_free_blocks", "KV cache blocks not held by any sequence.",
             MetricType::Gauge, s.num_free_blocks),
      Single("ropewire_kv_cache_blocks", "KV cache blocks in all.", MetricType::Gauge,
             s.num_blocks),
      Single("ropewire_generation_tokens_total", "Tokens generated.", MetricType::Counter,
             static_cast<double>(s.generated_tokens)),
      Single("ropewire_num_preemptions_total", "Sequences preempted to free KV cache blocks.",
             MetricType::Counter, static_cast<double>(s.preemptions)),
      Single("ropewire_prefix_cache_queries_total",
             "Prompt tokens looked up in the prefix cache (each admission, again after a "
             "preemption).",
             MetricType::Counter, static_cast<double>(s.prompt_tokens)),
      Single("ropewire_prefix_cache_hits_total",
             "Prompt tokens whose KV blocks the prefix cache served.", MetricType::Counter,
             static_cast<double>(s.prefix_hit_tokens)),
      Single("ropewire_steps_total", "Model steps run.", MetricType::Counter,
             static_cast<double>(s.steps)),
  };
}

}  // namespace

ServerMetrics::ServerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("ropewire_requests_total")
                    .Help("Finished ropewire.v1.Inference calls by method, gRPC code and "
                          "finish reason (\"none\" for calls that generated nothing).")
                    .Register(*registry_)),
      prompt_tokens_(prometheus::BuildCounter()
                         .Name("ropewire_prompt_tokens_total")
                         .Help("Prompt tokens of requests that reached their first token.")
                         .Register(*registry_)
                         .Add({})),
      time_to_first_token_(AddHistogram(*registry_, "ropewire_time_to_first_token_seconds",
                                        "From the call's arrival to its first generated token.",
                                        LatencyBuckets())),
      inter_token_latency_(AddHistogram(*registry_, "ropewire_inter_token_latency_seconds",
                                        "Between consecutive generated tokens of a request.",
                                        LatencyBuckets())),
      e2e_latency_(AddHistogram(*registry_, "ropewire_e2e_request_latency_seconds",
                                "From a generation call's arrival to its end.", LatencyBuckets())),
      queue_time_(AddHistogram(*registry_, "ropewire_request_queue_time_seconds",
                               "From a request's intake by the engine to its first step.",
                               LatencyBuckets())),
      request_prompt_tokens_(AddHistogram(*registry_, "ropewire_request_prompt_tokens",
                                          "Prompt length of finished generation requests.",
                                          TokenCountBuckets())),
      request_generation_tokens_(AddHistogram(*registry_, "ropewire_request_generation_tokens",
                                              "Tokens generated by finished generation requests.",
                                              TokenCountBuckets())),
      step_seconds_(AddHistogram(*registry_, "ropewire_step_duration_seconds",
                                 "One engine step: plan, model, sampling, commit and delivery.",
                                 LatencyBuckets())),
      model_seconds_(AddHistogram(*registry_, "ropewire_model_step_seconds",
                                  "The model's forward pass within one engine step.",
                                  LatencyBuckets())),
      step_tokens_(AddHistogram(*registry_, "ropewire_step_tokens",
                                "Tokens fed to the model in one step (prompt chunks and decodes).",
                                StepTokenBuckets())) {}

void ServerMetrics::SetEngineSource(std::function<std::optional<scheduler::EngineStats>()> source) {
  std::lock_guard<std::mutex> lock(source_mu_);
  engine_source_ = std::move(source);
}

void ServerMetrics::ObserveStep(const scheduler::StepRecord& step) {
  step_seconds_.Observe(step.step_seconds);
  model_seconds_.Observe(step.model_seconds);
  step_tokens_.Observe(step.num_tokens);
}

void ServerMetrics::ObserveFirstToken(double seconds_since_received, int prompt_tokens) {
  time_to_first_token_.Observe(seconds_since_received);
  prompt_tokens_.Increment(prompt_tokens);
}

void ServerMetrics::ObserveInterToken(double seconds) { inter_token_latency_.Observe(seconds); }

void ServerMetrics::RecordCall(const CallRecord& record) {
  requests_
      .Add({{"method", record.method},
            {"code", GrpcStatusCodeName(record.code)},
            {"finished_reason", record.finish_reason.empty() ? "none" : record.finish_reason}})
      .Increment();
  if (record.finish_reason.empty()) return;  // nothing was generated
  e2e_latency_.Observe(record.e2e_seconds);
  if (record.queue_seconds) queue_time_.Observe(*record.queue_seconds);
  request_prompt_tokens_.Observe(record.prompt_tokens);
  request_generation_tokens_.Observe(record.completion_tokens);
}

std::string ServerMetrics::Scrape() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::function<std::optional<scheduler::EngineStats>()> source;
  {
    std::lock_guard<std::mutex> lock(source_mu_);
    source = engine_source_;
  }
  if (source) {
    if (std::optional<scheduler::EngineStats> stats = source()) {
      for (auto& family : EngineFamilies(*stats)) families.push_back(std::move(family));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace ropewire::server
