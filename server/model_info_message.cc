#include "server/model_info_message.h"

#include "model/model_info.h"

namespace ropewire::server {

void FillModelInfo(const scheduler::Engine& engine, const tokenizer::ModelTokenizer* tokenizer,
                   const std::string& device, const std::string& model_path, v1::ModelInfo* info) {
  const model::ModelConfig& c = engine.model_config();
  info->set_model_type(c.model_type);
  info->set_architecture(c.architecture);
  info->set_max_model_len(static_cast<uint32_t>(engine.scheduler_config().max_model_len));
  info->set_vocab_size(static_cast<uint32_t>(c.vocab_size));
  info->set_num_layers(c.num_layers);
  info->set_hidden_size(static_cast<uint32_t>(c.hidden_size));
  info->set_num_heads(c.num_heads);
  info->set_num_kv_heads(c.num_kv_heads);
  info->set_head_dim(c.head_dim);
  info->set_block_size(engine.block_size());
  info->set_kv_cache_blocks(engine.num_blocks());
  info->set_kv_cache_tokens(uint64_t(engine.num_blocks()) * engine.block_size());
  info->set_has_tokenizer(tokenizer != nullptr);
  if (tokenizer != nullptr && tokenizer->config.chat_template) {
    info->set_chat_template(*tokenizer->config.chat_template);
  }
  for (int32_t id : engine.scheduler_config().eos_token_ids) info->add_eos_token_ids(id);
  info->set_device(device);
  info->set_model_path(model_path);

  // The resolved encoding as model/ describes it: scalar parameters go to the map, the rest to
  // named fields.
  const nlohmann::json pos = model::ModelInfoJson(c).at("position_encoding");
  v1::PositionEncodingInfo* out = info->mutable_position_encoding();
  for (const auto& [key, value] : pos.items()) {
    if (key == "kind" && value.is_string())
      out->set_kind(value.get<std::string>());
    else if (key == "rope_type" && value.is_string())
      out->set_rope_type(value.get<std::string>());
    else if (key == "rotary_dim" && value.is_number())
      out->set_rotary_dim(value.get<uint32_t>());
    else if (key == "layout" && value.is_string())
      out->set_rope_layout(value.get<std::string>());
    else if (key == "attention_scaling" && value.is_number())
      out->set_attention_scaling(value.get<float>());
    else if (value.is_number())
      (*out->mutable_parameters())[key] = value.get<double>();
  }
}

}  // namespace ropewire::server
