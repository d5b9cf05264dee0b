#include "tokenizer/post_processor.h"

#include "tokenizer/string_util.h"

namespace ropewire::tokenizer {
namespace {

using IdList = std::vector<int32_t>;

absl::StatusOr<IdList> SpecialTokenIds(const Json& special_tokens, const std::string& name,
                                       std::string_view where) {
  const Json* entry = OptionalMember(special_tokens, name);
  if (entry == nullptr) {
    return JsonError(
        where, Concat("template names special token '", name, "' missing from special_tokens"));
  }
  const std::string at = JsonPath(JsonPath(where, "special_tokens"), name);
  auto ids = RequiredMember(*entry, "ids", at);
  if (!ids.ok()) return ids.status();
  IdList out;
  if (!(*ids)->is_array()) return JsonError(JsonPath(at, "ids"), "expected an array");
  for (const Json& id : **ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return JsonError(JsonPath(at, "ids"), "expected non-negative integer ids");
    }
    out.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return out;
}

// TemplateProcessing's "single" template: special tokens around exactly one "$A".
absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplate(const Json& json,
                                                             std::string_view where) {
  auto single = RequiredMember(json, "single", where);
  if (!single.ok()) return single.status();
  const std::string single_where = JsonPath(where, "single");
  if (!(*single)->is_array()) return JsonError(single_where, "expected an array");
  const Json* special_tokens = OptionalMember(json, "special_tokens");
  static const Json kNoSpecialTokens = Json::object();
  if (special_tokens == nullptr) special_tokens = &kNoSpecialTokens;
  IdList before, after;
  int sequences = 0;
  for (size_t i = 0; i < (*single)->size(); ++i) {
    const Json& item = (**single)[i];
    const std::string at = JsonIndex(single_where, i);
    if (const Json* sequence = OptionalMember(item, "Sequence")) {
      auto id = GetString(*sequence, "id", JsonPath(at, "Sequence"));
      if (!id.ok()) return id.status();
      if (*id != "A") return JsonError(at, "a single-sequence template may only use $A");
      ++sequences;
      continue;
    }
    const Json* special = OptionalMember(item, "SpecialToken");
    if (special == nullptr) return JsonError(at, "expected a Sequence or SpecialToken item");
    auto name = GetString(*special, "id", JsonPath(at, "SpecialToken"));
    if (!name.ok()) return name.status();
    auto ids = SpecialTokenIds(*special_tokens, *name, where);
    if (!ids.ok()) return ids.status();
    IdList& target = sequences == 0 ? before : after;
    target.insert(target.end(), ids->begin(), ids->end());
  }
  if (sequences != 1) return JsonError(single_where, "must contain $A exactly once");
  return std::make_unique<PostProcessor>(std::move(before), std::move(after));
}

// RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id].
absl::StatusOr<int32_t> TokenPairId(const Json& json, std::string_view key,
                                    std::string_view where) {
  auto pair = RequiredMember(json, key, where);
  if (!pair.ok()) return pair.status();
  const Json& value = **pair;
  if (!value.is_array() || value.size() != 2 || !value[1].is_number_integer() ||
      value[1].get<int64_t>() < 0 || value[1].get<int64_t>() > INT32_MAX) {
    return JsonError(JsonPath(where, key), "expected [token, id]");
  }
  return static_cast<int32_t>(value[1].get<int64_t>());
}

absl::StatusOr<std::unique_ptr<PostProcessor>> ParseSequence(const Json& json,
                                                             std::string_view where) {
  auto list = RequiredMember(json, "processors", where);
  if (!list.ok()) return list.status();
  const std::string list_where = JsonPath(where, "processors");
  if (!(*list)->is_array()) return JsonError(list_where, "expected an array");
  IdList before, after;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = ParsePostProcessor((**list)[i], JsonIndex(list_where, i));
    if (!step.ok()) return step.status();
    // Each processor wraps the output of the previous one.
    before.insert(before.begin(), (*step)->before().begin(), (*step)->before().end());
    after.insert(after.end(), (*step)->after().begin(), (*step)->after().end());
  }
  return std::make_unique<PostProcessor>(std::move(before), std::move(after));
}

}  // namespace

void PostProcessor::Apply(std::vector<int32_t>& ids) const {
  ids.insert(ids.begin(), before_.begin(), before_.end());
  ids.insert(ids.end(), after_.begin(), after_.end());
}

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view where) {
  auto type = ComponentType(json, where);
  if (!type.ok()) return type.status();
  if (*type == "TemplateProcessing") return ParseTemplate(json, where);
  if (*type == "ByteLevel") return std::make_unique<PostProcessor>(IdList{}, IdList{});
  if (*type == "Sequence") return ParseSequence(json, where);
  if (*type == "RobertaProcessing" || *type == "BertProcessing") {
    auto cls = TokenPairId(json, "cls", where);
    if (!cls.ok()) return cls.status();
    auto sep = TokenPairId(json, "sep", where);
    if (!sep.ok()) return sep.status();
    return std::make_unique<PostProcessor>(IdList{*cls}, IdList{*sep});
  }
  return UnsupportedComponent(where, "post-processor", *type);
}

}  // namespace ropewire::tokenizer
