#include "server/server_runner.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "model/executor.h"
#include "model/gguf/gguf_weights.h"
#include "scheduler/engine.h"
#include "server/api_keys.h"
#include "server/health_service.h"
#include "server/http_endpoint.h"
#include "server/inference_service.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/tls.h"
#include "spdlog/spdlog.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace ropewire::server {
namespace {

constexpr char kServiceName[] = "ropewire.v1.Inference";

void ConfigureChannel(grpc::ServerBuilder& builder, const ServerOptions& options) {
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // Long token streams: ping idle connections so dead peers are noticed, and tolerate clients
  // that ping often (ghz --keepalive, load balancers) instead of sending GOAWAY.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

std::string ReplicaName(const ServerOptions& options) {
  if (!options.replica_name.empty()) return options.replica_name;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "";
  return host;
}

struct LoadedModel {
  std::shared_ptr<scheduler::Engine> engine;
  std::shared_ptr<const tokenizer::ModelTokenizer> tokenizer;
};

// A GGUF file's tokenizer comes from its metadata (chat template included); a directory's from
// its tokenizer.json and config files, when it has one (null: token ids only).
absl::StatusOr<std::shared_ptr<const tokenizer::ModelTokenizer>> LoadTokenizer(
    const std::string& model) {
  absl::StatusOr<tokenizer::ModelTokenizer> tokenizer;
  if (model::IsGgufModelPath(model)) {
    tokenizer = tokenizer::LoadGgufTokenizer(model);
  } else if (std::filesystem::exists(model + "/tokenizer.json")) {
    tokenizer = tokenizer::LoadModelTokenizer(model);
  } else {
    return nullptr;
  }
  if (!tokenizer.ok()) return tokenizer.status();
  return std::make_shared<const tokenizer::ModelTokenizer>(std::move(*tokenizer));
}

absl::StatusOr<LoadedModel> LoadModel(const ServerOptions& options, ServerMetrics* metrics) {
  LoadedModel loaded;
  if (!options.no_tokenizer) {
    auto tokenizer = LoadTokenizer(options.model);
    if (!tokenizer.ok()) return tokenizer.status();
    loaded.tokenizer = std::move(*tokenizer);
  }
  model::ExecutorOptions executor_options;
  executor_options.device = options.device;
  executor_options.dtype = options.dtype;
  executor_options.gpu_memory_utilization = options.gpu_memory_utilization;
  executor_options.weight_dtype = options.weight_dtype;
  executor_options.quantization = options.quantization;
  executor_options.kv_cache_dtype = options.kv_cache_dtype;
  executor_options.max_num_batched_tokens = options.max_num_batched_tokens;
  executor_options.block_size = options.block_size;
  executor_options.num_blocks = options.num_kv_blocks;
  executor_options.kv_cache_bytes = options.kv_cache_bytes;
  executor_options.num_threads = options.threads;
  executor_options.max_model_len = options.max_model_len;
  auto executor = model::LoadExecutor(options.model, executor_options);
  if (!executor.ok()) return executor.status();

  scheduler::EngineConfig config;
  config.scheduler.max_num_seqs = options.max_num_seqs;
  config.scheduler.max_num_batched_tokens = options.max_num_batched_tokens;
  config.scheduler.max_model_len = options.max_model_len;
  config.scheduler.max_waiting = options.max_queue;
  config.scheduler.enable_prefix_caching = options.prefix_caching;
  config.scheduler.static_batching = options.static_batching;
  config.scheduler.context_shift_sink_tokens = options.context_shift_sink_tokens;
  if (loaded.tokenizer && !loaded.tokenizer->config.eos_token_ids.empty()) {
    config.scheduler.eos_token_ids = loaded.tokenizer->config.eos_token_ids;
  }
  config.on_step = [metrics](const scheduler::StepRecord& step) { metrics->ObserveStep(step); };
  auto engine = scheduler::Engine::Create(std::move(*executor), config);
  if (!engine.ok()) return engine.status();
  loaded.engine = std::move(*engine);
  return loaded;
}

std::chrono::system_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::duration<double>(seconds));
}

// Decision 10, in the order a balancer can follow: health NOT_SERVING while still serving
// normally for --drain-delay-seconds (Kubernetes endpoints and health-checking balancers stop
// choosing this replica); then GOAWAY on every connection and the listener closed, so new calls
// are refused at the transport (a proxy retries them elsewhere) and never answered by a handler;
// in-flight calls keep being served until they finish or --drain-grace-seconds pass.
void Drain(grpc::Server& server, HealthService& health, InferenceService& service,
           scheduler::Engine* engine, const ServerOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  health.SetServing(false);
  service.SetState(ServingState::kDraining);
  if (options.drain_delay_seconds > 0) {
    spdlog::info("draining: health NOT_SERVING; serving normally for {} s more",
                 options.drain_delay_seconds);
    std::this_thread::sleep_for(Seconds(options.drain_delay_seconds));
  }
  spdlog::info("draining: GOAWAY sent, listener closed; in-flight requests have {} s",
               options.drain_grace_seconds);
  // Health watchers would otherwise hold Shutdown until its deadline.
  health.Shutdown();
  // Blocks until every call is done, cancelling those still open at the deadline (their
  // reactors abort them in the engine). The engine thread keeps stepping meanwhile, and nothing
  // it or a reactor does waits on this thread.
  server.Shutdown(std::chrono::system_clock::now() + Seconds(options.drain_grace_seconds));
  // Only aborted requests can still be in the engine; they end at its next step.
  if (engine != nullptr) engine->Stop(std::chrono::seconds(1));
  spdlog::info("drained in {:.1f} s; exiting",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// Everything a served process holds besides the gRPC server, built before it starts.
struct Serving {
  std::unique_ptr<Authenticator> authenticator;
  std::unique_ptr<ServerMetrics> metrics;
  std::unique_ptr<AccessLog> access_log;
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

absl::StatusOr<Serving> PrepareServing(const ServerOptions& options, LogFormat format) {
  Serving serving;
  auto authenticator = Authenticator::Create(options.api_key_file);
  if (!authenticator.ok()) return authenticator.status();
  serving.authenticator = std::move(*authenticator);
  if (serving.authenticator->enabled()) {
    spdlog::info("API keys: {} from {}; re-read on SIGHUP", serving.authenticator->num_keys(),
                 options.api_key_file);
  }
  TlsOptions tls{options.tls_cert, options.tls_key, options.tls_client_ca,
                 options.tls_reload_seconds};
  auto credentials = MakeServerCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  serving.credentials = std::move(*credentials);
  serving.metrics = std::make_unique<ServerMetrics>();
  serving.access_log = std::make_unique<AccessLog>(format);
  return serving;
}

// Waits for a stop signal; SIGHUP on the way re-reads the API keys.
void WaitForStop(const sigset_t& signals, Authenticator& authenticator) {
  for (;;) {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) {
      spdlog::info("received signal {}", signal_number);
      return;
    }
    if (!authenticator.enabled()) {
      spdlog::info("SIGHUP: no --api-key-file to re-read");
    } else if (absl::Status reloaded = authenticator.Reload(); reloaded.ok()) {
      spdlog::info("SIGHUP: API keys re-read: {}", authenticator.num_keys());
    } else {
      spdlog::error("SIGHUP: keeping the API keys in use: {}", std::string(reloaded.message()));
    }
  }
}

}  // namespace

absl::Status RunServer(const ServerOptions& options, const sigset_t& signals) {
  auto format = ParseLogFormat(options.log_format);
  if (!format.ok()) return format.status();
  if (absl::Status s = ConfigureLogging(options.log_level, *format); !s.ok()) return s;
  auto serving = PrepareServing(options, *format);
  if (!serving.ok()) return serving.status();
  RequestLimits limits;
  limits.default_max_tokens = options.default_max_tokens;
  InferenceService service(limits, options.device, ReplicaName(options),
                           serving->authenticator.get(),
                           {serving->metrics.get(), serving->access_log.get()});
  HealthService health({kServiceName});

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  const std::string address = absl::StrCat(options.host, ":", options.port);
  builder.AddListeningPort(address, serving->credentials, &selected_port);
  builder.RegisterService(&service);
  builder.RegisterService(&health);
  ConfigureChannel(builder, options);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || selected_port == 0)
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  spdlog::info("ropewire-server listening on {}:{} ({}; loading {})", options.host, selected_port,
               options.tls_cert.empty()        ? "plaintext"
               : options.tls_client_ca.empty() ? "TLS"
                                               : "mutual TLS",
               options.model);
  std::unique_ptr<HttpEndpoint> http;
  if (options.metrics_port >= 0) {
    auto started =
        HttpEndpoint::Start(options.host, options.metrics_port, serving->metrics.get(), [&service] {
          const ServingState state = service.state();
          return HttpEndpoint::Readiness{state == ServingState::kServing, ServingStateName(state)};
        });
    if (!started.ok()) {
      server->Shutdown(std::chrono::system_clock::now());
      return started.status();
    }
    http = std::move(*started);
    spdlog::info("metrics on http://{}:{}/metrics (also /healthz, /readyz)", options.host,
                 http->port());
  }

  auto loaded = LoadModel(options, serving->metrics.get());
  if (!loaded.ok()) {
    server->Shutdown(std::chrono::system_clock::now());
    return absl::Status(loaded.status().code(),
                        absl::StrCat("cannot load the model: ", loaded.status().message()));
  }
  const auto& c = loaded->engine->model_config();
  service.SetModel(loaded->engine, loaded->tokenizer, options.model);
  serving->metrics->SetEngineSource([engine = std::weak_ptr<scheduler::Engine>(loaded->engine)]()
                                        -> std::optional<scheduler::EngineStats> {
    if (auto live = engine.lock()) return live->Stats();
    return std::nullopt;
  });
  service.SetState(ServingState::kServing);
  health.SetServing(true);
  spdlog::info("serving {} ({} layers, {}) with {} KV blocks of {} tokens{}", c.model_type,
               c.num_layers, c.position.rope_type.empty() ? "no rope" : c.position.rope_type,
               loaded->engine->num_blocks(), loaded->engine->block_size(),
               loaded->tokenizer ? ", tokenizer loaded" : ", no tokenizer (token ids only)");

  WaitForStop(signals, *serving->authenticator);
  Drain(*server, health, service, loaded->engine.get(), options);
  return absl::OkStatus();
}

}  // namespace ropewire::server
