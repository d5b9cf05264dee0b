// Post-processors of tokenizer.json: add the special tokens a model expects around a single
// sequence (BOS/EOS, CLS/SEP).
//
// Supported: TemplateProcessing (single template), ByteLevel (offsets only, so no effect on
// ids), RobertaProcessing, BertProcessing, Sequence. Others are rejected at load time.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/json_util.h"

namespace ropewire::tokenizer {

class PostProcessor {
 public:
  // Ids a single sequence is wrapped in.
  PostProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}

  void Apply(std::vector<int32_t>& ids) const;
  const std::vector<int32_t>& before() const { return before_; }
  const std::vector<int32_t>& after() const { return after_; }

 private:
  std::vector<int32_t> before_;
  std::vector<int32_t> after_;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view where);

}  // namespace ropewire::tokenizer
