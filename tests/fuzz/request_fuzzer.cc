// libFuzzer target: a request as it arrives over gRPC: the raw message parsed (with the
// diagnosis of a message that does not parse), then BuildRequest with the demo model's
// tokenizer and the server's limits, then the scheduler's admission check.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ropewire/v1/inference.pb.h"
#include "scheduler/scheduler.h"
#include "server/message_codec.h"
#include "server/request_builder.h"
#include "tokenizer/tokenizer_config.h"

namespace {

const ropewire::tokenizer::ModelTokenizer& DemoTokenizer() {
  static const auto* tokenizer = [] {
    auto loaded =
        ropewire::tokenizer::LoadModelTokenizer(std::string(ROPEWIRE_SOURCE_DIR) + "/models/demo");
    if (!loaded.ok()) __builtin_trap();
    return new ropewire::tokenizer::ModelTokenizer(std::move(*loaded));
  }();
  return *tokenizer;
}

const ropewire::scheduler::Scheduler& DemoScheduler() {
  static const auto* scheduler = [] {
    ropewire::scheduler::SchedulerConfig config;
    config.max_model_len = 512;
    return ropewire::scheduler::Scheduler::Create(config, 64, 16).release();
  }();
  return *scheduler;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ropewire::v1::GenerateRequest message;
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer buffer(&slice, 1);
  // A message that does not parse is diagnosed inside ParseRequest; one that parses is diagnosed
  // here too: the diagnosis must come back with a description for any bytes.
  if (!ropewire::server::ParseRequest(buffer, &message).ok()) return 0;
  if (ropewire::server::DiagnoseParseFailure(bytes, message).empty()) __builtin_trap();
  ropewire::server::RequestLimits limits;
  limits.max_prompt_bytes = 512 * 64;
  auto built = ropewire::server::BuildRequest(message, &DemoTokenizer(), limits);
  if (!built.ok()) return 0;
  (void)DemoScheduler().CheckAdmissible(built->request);
  (void)built->request.sampling.Validate(4096);
  return 0;
}
