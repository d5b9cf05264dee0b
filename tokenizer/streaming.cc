#include "tokenizer/streaming.h"

#include <algorithm>

#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {

DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      pipeline_(tokenizer.NewDecoderPipeline()) {}

absl::StatusOr<std::string> DecodeStream::Step(int32_t id) {
  if (finished_) return absl::FailedPreconditionError("the decode stream has finished");
  const std::string* token = tokenizer_.IdToToken(id);
  if (token == nullptr) {
    return absl::InvalidArgumentError(Concat("token id ", id, " is not in the vocabulary"));
  }
  std::string delta;
  if (skip_special_tokens_ && tokenizer_.IsSpecialToken(id)) return delta;
  pipeline_.Push(*token, delta);
  return delta;
}

std::string DecodeStream::Finish() {
  std::string rest;
  if (finished_) return rest;
  finished_ = true;
  pipeline_.Finish(rest);
  return rest;
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stop_strings_(std::move(stop_strings)) {}

StopStringMatcher::Output StopStringMatcher::Push(std::string_view text) {
  Output output;
  if (stopped()) return output;
  held_.append(text);
  // Everything before `held_` was checked already, so any stop string still to complete
  // starts inside `held_`.
  size_t best_end = std::string::npos;
  size_t best_begin = 0;
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    if (stop_strings_[i].empty()) continue;
    const size_t at = held_.find(stop_strings_[i]);
    if (at == std::string::npos) continue;
    const size_t end = at + stop_strings_[i].size();
    if (end < best_end || (end == best_end && at < best_begin)) {
      best_end = end;
      best_begin = at;
      stop_index_ = i;
    }
  }
  if (stopped()) {
    output.text = held_.substr(0, best_begin);
    output.stop_index = stop_index_;
    held_.clear();
    return output;
  }
  // Hold back the longest end of the text that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& stop : stop_strings_) {
    if (stop.empty()) continue;
    const size_t longest = std::min(held_.size(), stop.size() - 1);
    for (size_t length = longest; length > keep; --length) {
      if (std::string_view(held_).substr(held_.size() - length) ==
          std::string_view(stop).substr(0, length)) {
        keep = length;
        break;
      }
    }
  }
  output.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return output;
}

std::string StopStringMatcher::Finish() {
  if (stopped()) return "";
  std::string rest = std::move(held_);
  held_.clear();
  return rest;
}

TextStreamer::TextStreamer(const Tokenizer& tokenizer, bool skip_special_tokens,
                           std::vector<std::string> stop_strings)
    : decode_(tokenizer, skip_special_tokens), stops_(std::move(stop_strings)) {}

absl::StatusOr<StopStringMatcher::Output> TextStreamer::Step(int32_t id) {
  if (stops_.stopped()) return StopStringMatcher::Output{};
  absl::StatusOr<std::string> delta = decode_.Step(id);
  if (!delta.ok()) return delta.status();
  return stops_.Push(*delta);
}

StopStringMatcher::Output TextStreamer::Finish() {
  if (stops_.stopped()) return {};
  StopStringMatcher::Output tail = stops_.Push(decode_.Finish());
  if (!tail.stop_index) tail.text += stops_.Finish();
  return tail;
}

}  // namespace ropewire::tokenizer
