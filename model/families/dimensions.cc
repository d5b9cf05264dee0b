#include "base/status_macros.h"
#include "model/families/families.h"

namespace ropewire::model {

absl::Status ParseBasicDimensions(const JsonReader& json, const std::vector<std::string>& hidden,
                                  const std::vector<std::string>& layers,
                                  const std::vector<std::string>& heads, ModelConfig* c) {
  ASSIGN_OR_RETURN(c->vocab_size, json.PositiveInt("vocab_size"));
  ASSIGN_OR_RETURN(c->hidden_size, json.PositiveInt(FirstPresentKey(json, hidden)));
  ASSIGN_OR_RETURN(int64_t num_layers, json.PositiveInt(FirstPresentKey(json, layers)));
  const std::string heads_key = FirstPresentKey(json, heads);
  ASSIGN_OR_RETURN(int64_t num_heads, json.PositiveInt(heads_key));
  if (c->hidden_size % num_heads != 0) return json.Error(heads_key, "must divide the hidden size");
  c->num_layers = static_cast<int>(num_layers);
  c->num_heads = c->num_kv_heads = static_cast<int>(num_heads);
  c->head_dim = static_cast<int>(c->hidden_size / num_heads);
  return absl::OkStatus();
}

std::string FirstPresentKey(const JsonReader& json, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    if (json.Has(key)) return key;
  }
  return keys.back();
}

}  // namespace ropewire::model
