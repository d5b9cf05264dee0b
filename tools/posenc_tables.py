"""Dumps positional-encoding tables from transformers for ropewire's unit tests.

For every RoPE scaling type: a config.json-style dict, the inverse frequencies and attention factor
transformers derives from it (length-dependent types at several sequence lengths, through the
model's own rotary module), ALiBi slopes for 1..64 heads (BLOOM/Falcon and MPT builders), T5
relative-position buckets and XGLM sinusoidal rows. Written by tools/make_fixtures.py.
"""
import json

import torch
import transformers
from transformers import GPTNeoXConfig, LlamaConfig
from transformers.models.bloom.modeling_bloom import build_alibi_tensor as bloom_alibi
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor
from transformers.models.t5.modeling_t5 import T5Attention
from transformers.models.xglm.modeling_xglm import XGLMSinusoidalPositionalEmbedding


def llama_config(head_dim, max_positions, rope, heads=4, **top_level):
    return dict(model_type="llama", vocab_size=32, hidden_size=head_dim * heads, intermediate_size=8,
                num_hidden_layers=1, num_attention_heads=heads, num_key_value_heads=heads,
                max_position_embeddings=max_positions, rope_parameters=rope, **top_level)


def neox_config(head_dim, max_positions, rope, heads=4):
    return dict(model_type="gpt_neox", vocab_size=32, hidden_size=head_dim * heads,
                intermediate_size=8, num_hidden_layers=1, num_attention_heads=heads,
                max_position_embeddings=max_positions, rope_parameters=rope)


def rope_cases():
    """name -> (config dict, sequence lengths to evaluate length-dependent types at)."""
    return {
        "default_theta5e5": (llama_config(128, 8192, {"rope_type": "default", "rope_theta": 500000.0}), []),
        # Partial rotary through GPT-NeoX (Llama's default type rotates the whole head).
        "default_partial": (neox_config(80, 2048, {"rope_type": "default", "rope_theta": 10000.0,
                                                   "partial_rotary_factor": 0.4}), []),
        "linear_f4": (llama_config(128, 4096, {"rope_type": "linear", "factor": 4, "rope_theta": 10000.0}), []),
        "dynamic_f2": (llama_config(128, 4096, {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}),
                       [1, 4096, 4097, 8192, 16384]),
        "dynamic_partial": (neox_config(64, 64, {"rope_type": "dynamic", "factor": 3.0, "rope_theta": 20000.0,
                                                   "partial_rotary_factor": 0.5}), [10, 64, 65, 100, 200]),
        "yarn_qwen": (llama_config(128, 131072, {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1000000.0,
                                                 "original_max_position_embeddings": 32768}), []),
        "yarn_deepseek_mscale": (llama_config(128, 163840, {
            "rope_type": "yarn", "factor": 40.0, "rope_theta": 10000.0, "mscale": 1.0, "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1}), []),
        "yarn_mscale_ratio": (llama_config(64, 128, {
            "rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0, "mscale": 0.707, "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 32, "beta_fast": 16.0, "beta_slow": 2.0}), []),
        "yarn_gpt_oss_no_truncate": (llama_config(64, 131072, {
            "rope_type": "yarn", "factor": 32.0, "rope_theta": 150000.0, "truncate": False,
            "original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0}), []),
        "yarn_attention_factor": (llama_config(128, 8192, {
            "rope_type": "yarn", "factor": 2.0, "rope_theta": 10000.0, "attention_factor": 1.0,
            "original_max_position_embeddings": 4096}), []),
        "yarn_top_level_original": (llama_config(128, 65536, {"rope_type": "yarn", "factor": 8.0,
                                                              "rope_theta": 10000.0},
                                                 original_max_position_embeddings=8192), []),
        "llama3_8b": (llama_config(128, 131072, {
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192, "rope_theta": 500000.0}), []),
        "llama3_small": (llama_config(16, 128, {
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32, "rope_theta": 10000.0}), []),
        "longrope_phi3_128k": (llama_config(96, 131072, {
            "rope_type": "longrope", "rope_theta": 10000.0,
            "short_factor": [1.0 + 0.01 * k for k in range(48)],
            "long_factor": [1.0 + 0.5 * k for k in range(48)]},
            original_max_position_embeddings=4096), [100, 4096, 4097, 131072]),
        "longrope_attention_factor": (llama_config(16, 128, {
            "rope_type": "longrope", "rope_theta": 10000.0, "attention_factor": 1.25, "factor": 2.0,
            "short_factor": [1.0] * 8, "long_factor": [2.0] * 8,
            "original_max_position_embeddings": 32}), [32, 33]),
    }


def hf_rope(config_dict, seq_len):
    """inv_freq and attention factor exactly as the model's rotary module uses them for a forward
    over positions [0, seq_len)."""
    kwargs = {k: v for k, v in config_dict.items() if k != "model_type"}
    if config_dict["model_type"] == "gpt_neox":
        rotary = GPTNeoXRotaryEmbedding(GPTNeoXConfig(**kwargs))
    else:
        rotary = LlamaRotaryEmbedding(LlamaConfig(**kwargs))
    if seq_len is None:
        return rotary.inv_freq, float(rotary.attention_scaling)
    x = torch.zeros(1, 1, dtype=torch.float32)
    rotary(x, torch.arange(seq_len).unsqueeze(0))
    return rotary.inv_freq, float(rotary.attention_scaling)


def floats(t):
    return [float(v) for v in t.float().tolist()]


def write(path):
    rope = {}
    for name, (config, lengths) in rope_cases().items():
        entry = {"config": config}
        inv_freq, factor = hf_rope(config, None)
        entry["inv_freq"] = floats(inv_freq)
        entry["attention_factor"] = factor
        entry["by_length"] = []
        for length in lengths:
            inv_freq, factor = hf_rope(config, length)
            entry["by_length"].append({"seq_len": length, "inv_freq": floats(inv_freq),
                                       "attention_factor": factor})
        rope[name] = entry

    mask = torch.ones(1, 2, dtype=torch.long)
    bloom_slopes, mpt_slopes = {}, {}
    for heads in range(1, 65):
        bloom_slopes[heads] = floats(bloom_alibi(mask, heads, torch.float32).reshape(heads, 2)[:, 1])
        mpt_slopes[heads] = floats(-build_mpt_alibi_tensor(heads, 2).reshape(heads, 2)[:, 0])

    relative = torch.arange(-300, 301)
    buckets = []
    for bidirectional in (True, False):
        for num_buckets, max_distance in ((32, 128), (16, 64), (32, 20)):
            b = T5Attention._relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
            buckets.append({"bidirectional": bidirectional, "num_buckets": num_buckets,
                            "max_distance": max_distance, "relative_position": relative.tolist(),
                            "bucket": b.tolist()})

    sinusoids = []
    for dim in (8, 64, 7):
        table = XGLMSinusoidalPositionalEmbedding.get_embedding(40, dim, 1)
        sinusoids.append({"dim": dim, "padding_idx": 1, "rows": [floats(r) for r in table]})

    out = {"generator": "tools/posenc_tables.py", "transformers_version": transformers.__version__,
           "torch_version": torch.__version__, "rope": rope, "alibi_slopes": bloom_slopes,
           "mpt_alibi_slopes": mpt_slopes, "t5_buckets": buckets, "xglm_sinusoids": sinusoids}
    import os
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"posenc tables: {len(rope)} rope cases -> {path}")
