#!/usr/bin/env python3
"""Writes the tiny model fixtures and their golden outputs with the reference implementation.

Each fixture is a Hugging Face model directory created by transformers itself
(`AutoModelForCausalLM.from_config` under a fixed seed, `save_pretrained` to safetensors) plus a
`golden.json` holding, for several prompts, the f32 logits of every prompt position from a full
forward pass and a 32-token greedy continuation (EOS ignored), each step's top-1/top-2 logit
margin included so tests can tell a real mismatch from a near tie. Fixtures whose RoPE table
depends on the sequence length (dynamic NTK, LongRoPE) also hold `prefix_logits`: the last-position
logits of a full forward over each prompt prefix. The newer small-vocabulary fixtures take the
first seed whose greedy margins clear MIN_GREEDY_MARGIN.

It also writes tests/fixtures/posenc/posenc_tables.json (tools/posenc_tables.py): inverse
frequencies and attention factors of every rope type, ALiBi slopes, T5 buckets, XGLM sinusoids.

Usage: tools/make_fixtures.py [--out tests/fixtures/models] [--only NAME ...]
Requirements: tools/requirements.txt.
"""
import argparse
import copy
import json
import os
import shutil

import torch
import transformers
from transformers import (AutoModelForCausalLM, BloomConfig, FalconConfig, GPT2Config, GPTJConfig,
                          GPTNeoXConfig, LlamaConfig, MistralConfig, MptConfig, OPTConfig, PhiConfig,
                          Phi3Config, Qwen2Config, XGLMConfig)

import posenc_tables  # noqa: E402 (tools/ is on sys.path when run as a script)

GREEDY_TOKENS = 32
# Large enough initial weights that logits are far from uniform, so greedy steps are decisive.
INIT_RANGE = 0.15
MIN_GREEDY_MARGIN = 0.003

SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
             initializer_range=INIT_RANGE, bos_token_id=1, eos_token_id=2)

# Positional-encoding fixtures: vocabulary 64 and small widths keep each under ~250 KB.
# max_position_embeddings 64 with original_max_position_embeddings 32 (or 128 with 32 where the
# scaling type needs room) lets short prompts cross both lengths.
TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
            initializer_range=INIT_RANGE, bos_token_id=1, eos_token_id=2)
# Prompts for the vocabulary of 64: 7 tokens, 41 (crosses 32), 1, and 70 (crosses 64).
SHORT_PROMPTS = [[1, 17, 42, 9, 3, 60, 7], [1] + list(range(20, 60)), [5]]
LONG_PROMPT = [1] + [(7 * i) % 60 + 3 for i in range(69)]
TINY_PROMPTS = SHORT_PROMPTS + [LONG_PROMPT]
LONGROPE_SHORT = [1.0, 1.02, 1.05, 1.1, 1.2, 1.4, 1.7, 2.0]
LONGROPE_LONG = [1.0, 1.3, 1.9, 2.8, 4.1, 6.0, 9.0, 13.0]


def rope_fixtures():
    """Llama with every rope scaling type (transformers 5.x keys unless `v4_keys`)."""
    p = TINY_PROMPTS
    wide = {**TINY, "max_position_embeddings": 128}
    return {
        # dynamic NTK: positions beyond 64 rescale the base per sequence length.
        "llama_dynamic": (LlamaConfig(**TINY, rope_parameters={"rope_type": "dynamic", "factor": 2.0,
                                                               "rope_theta": 10000.0}),
                          {"length_dependent": True}, p),
        "llama_dynamic_v4keys": (LlamaConfig(**TINY, rope_parameters={"rope_type": "dynamic", "factor": 3.0,
                                                                      "rope_theta": 20000.0}),
                                 {"length_dependent": True, "v4_keys": "type"}, p[:3]),
        "llama_yarn": (LlamaConfig(**wide, rope_parameters={"rope_type": "yarn", "factor": 4.0,
                                                            "original_max_position_embeddings": 32,
                                                            "rope_theta": 10000.0}), {}, p[:3]),
        # DeepSeek-style mscale ratio, non-default betas, no truncation; 4.x keys with the
        # original length at the top level.
        "llama_yarn_mscale_v4keys": (LlamaConfig(**wide, rope_parameters={
            "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32,
            "beta_fast": 16.0, "beta_slow": 2.0, "mscale": 0.707, "mscale_all_dim": 1.0,
            "truncate": False, "rope_theta": 10000.0}), {"v4_keys": "rope_type"}, p[:3]),
        "llama_yarn_attention_factor": (LlamaConfig(**wide, rope_parameters={
            "rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32,
            "attention_factor": 1.3, "rope_theta": 10000.0}), {}, p[:3]),
        "llama_llama3": (LlamaConfig(**wide, rope_parameters={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32, "rope_theta": 10000.0}), {}, p[:3]),
        "llama_longrope": (LlamaConfig(**wide, rope_parameters={
            "rope_type": "longrope", "short_factor": LONGROPE_SHORT, "long_factor": LONGROPE_LONG,
            "original_max_position_embeddings": 32, "rope_theta": 10000.0}),
                           {"length_dependent": True}, p[:3]),
    }


def family_fixtures():
    """One tiny model per architecture family."""
    p = SHORT_PROMPTS
    common = dict(vocab_size=64, initializer_range=INIT_RANGE, bos_token_id=1, eos_token_id=2)
    layer_norm = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    return {
        # rotary_pct 0.25 of head_dim 16, parallel residual, fused per-head qkv.
        "gpt_neox": (GPTNeoXConfig(**common, **layer_norm, intermediate_size=64,
                                   max_position_embeddings=128), {"v4_keys": "gpt_neox"}, p),
        "gpt_neox_sequential_linear": (GPTNeoXConfig(
            **common, **layer_norm, intermediate_size=64, max_position_embeddings=64,
            use_parallel_residual=False, rope_parameters={"rope_type": "linear", "factor": 2.0,
                                                          "rope_theta": 10000.0,
                                                          "partial_rotary_factor": 0.5}), {}, p),
        "gptj": (GPTJConfig(**common, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_inner=64,
                            n_positions=128), {}, p),
        # phi-2's partial rotary 0.4: 8 of head_dim 20.
        "phi": (PhiConfig(**common, hidden_size=40, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128,
                          partial_rotary_factor=0.4), {}, p),
        # Phi-3 "su" scaling in 4.x keys, top-level original_max_position_embeddings.
        "phi3_longrope": (Phi3Config(**common, **layer_norm, intermediate_size=64, num_key_value_heads=1,
                                     pad_token_id=0, max_position_embeddings=128,
                                     original_max_position_embeddings=32,
                                     rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                                      "short_factor": LONGROPE_SHORT,
                                                      "long_factor": LONGROPE_LONG}),
                          {"length_dependent": True, "v4_keys": "su"}, p),
        "phi3_partial": (Phi3Config(**common, **layer_norm, intermediate_size=64, pad_token_id=0,
                                    max_position_embeddings=128, partial_rotary_factor=0.75), {}, p),
        "bloom_alibi6": (BloomConfig(**common, hidden_size=24, n_layer=2, n_head=6), {}, p),
        # The residual stream continues from the normed values.
        "bloom_post_ln_residual": (BloomConfig(**common, hidden_size=24, n_layer=2, n_head=6,
                                               apply_residual_connection_post_layernorm=True), {}, p),
        # MPT's slope order for a non-power-of-two count, clip_qkv, bias-free layer norms.
        "mpt_alibi12": (MptConfig(**common, d_model=24, n_layers=2, n_heads=12,
                                  max_seq_len=128, attn_config={"clip_qkv": 0.6}), {}, p),
        "falcon_rope_mqa": (FalconConfig(**common, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, ffn_hidden_size=64,
                                         max_position_embeddings=128), {}, p),
        "falcon_new_arch": (FalconConfig(**common, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, num_kv_heads=2,
                                         new_decoder_architecture=True, ffn_hidden_size=64,
                                         max_position_embeddings=128), {}, p),
        # falcon-rw style: ALiBi, sequential block, per-head qkv, biases. Its eager attention adds
        # the ALiBi term twice; the SDPA path (as used by default) is the model's definition.
        "falcon_alibi6": (FalconConfig(**common, hidden_size=24, ffn_hidden_size=48, num_hidden_layers=2,
                                       num_attention_heads=6, alibi=True, multi_query=False,
                                       parallel_attn=False, bias=True, max_position_embeddings=128),
                          {"attn_implementation": "sdpa"}, p),
        "gpt2": (GPT2Config(**common, n_embd=32, n_layer=2, n_head=2, n_inner=64, n_positions=128,
                            scale_attn_by_inverse_layer_idx=True), {}, p),
        # Token embeddings narrower than the hidden size: project_in / project_out.
        "opt": (OPTConfig(**common, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          ffn_dim=64, word_embed_proj_dim=16, max_position_embeddings=128,
                          pad_token_id=1), {}, p),
        # opt-350m's post-LayerNorm blocks (no final norm) with project_in / project_out.
        "opt_post_ln": (OPTConfig(**common, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  ffn_dim=64, word_embed_proj_dim=16, max_position_embeddings=128,
                                  pad_token_id=1, do_layer_norm_before=False), {}, p),
        "xglm": (XGLMConfig(**common, d_model=32, num_layers=2, attention_heads=2, ffn_dim=64,
                            max_position_embeddings=128, pad_token_id=1), {}, p),
    }


def fixtures():
    """name -> (config, options, prompts). Prompts are lists of token ids."""
    prompts = [[1, 17, 42, 99, 3, 250, 7], [1] + list(range(20, 60)), [5], [1, 200, 201, 202] * 6]
    return {
        "llama_gqa": (LlamaConfig(**SMALL), {}, prompts),
        "llama_linear": (LlamaConfig(**SMALL, rope_scaling={"rope_type": "linear", "factor": 2.0}),
                         {}, prompts),
        # head_dim that is not hidden/heads, every bias, tied embeddings, a non-default theta.
        "llama_biases_tied": (LlamaConfig(**{**SMALL, "num_key_value_heads": 1}, head_dim=24,
                                          attention_bias=True, mlp_bias=True,
                                          tie_word_embeddings=True, rope_theta=500000.0),
                              {}, prompts),
        # A window shorter than the longer prompts, so sliding-window masking is exercised.
        "mistral_window": (MistralConfig(**SMALL, sliding_window=8), {}, prompts),
        "qwen2_bias": (Qwen2Config(**{**SMALL, "num_key_value_heads": 1}, tie_word_embeddings=True,
                                   rope_theta=1000000.0), {}, prompts),
        # Weights stored in bf16 and f16; the reference runs them upcast to f32, as ropewire does.
        "llama_bf16": (LlamaConfig(**SMALL), {"dtype": torch.bfloat16}, prompts[:2]),
        "llama_f16": (LlamaConfig(**SMALL), {"dtype": torch.float16}, prompts[:2]),
        # Several shards tied together by model.safetensors.index.json.
        "llama_sharded": (LlamaConfig(**SMALL), {"max_shard_size": "100KB"}, prompts[:2]),
        **rope_fixtures(),
        **family_fixtures(),
    }


def reset_length_dependent_rope(model):
    """transformers keeps a dynamic-NTK base grown by an earlier, longer forward; every golden
    forward starts from the model's initial state so each depends only on its own length."""
    for module in model.modules():
        if hasattr(module, "original_inv_freq") and hasattr(module, "max_seq_len_cached"):
            module.inv_freq = module.original_inv_freq.clone()
            module.max_seq_len_cached = module.original_max_seq_len


def full_logits(model, ids):
    reset_length_dependent_rope(model)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def greedy(model, prompt):
    """Greedy continuation by full forwards (no cache), EOS ignored. Also returns the last-position
    logits of each of those forwards."""
    ids = list(prompt)
    tokens, margins, last_rows = [], [], []
    for _ in range(GREEDY_TOKENS):
        last = full_logits(model, ids)[-1]
        top2 = torch.topk(last, 2).values
        nxt = int(torch.argmax(last))
        tokens.append(nxt)
        margins.append(float(top2[0] - top2[1]))
        last_rows.append(last)
        ids.append(nxt)
    return tokens, margins, torch.stack(last_rows)


def rounded(rows, digits=7):
    return [[float("%.*g" % (digits, v)) for v in row] for row in rows.tolist()]


def rewrite_in_v4_keys(path, style):
    """Rewrites a saved config.json in the transformers 4.x key style `style`."""
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    rope = config.pop("rope_parameters")
    theta = rope.pop("rope_theta")
    if style == "gpt_neox":
        config["rotary_emb_base"] = theta
        config["rotary_pct"] = rope.pop("partial_rotary_factor")
    else:
        config["rope_theta"] = theta
        rope_type = rope.pop("rope_type")
        if style == "rope_type":
            rope["rope_type"] = rope_type
            config["original_max_position_embeddings"] = rope.pop("original_max_position_embeddings")
        else:
            rope["type"] = "su" if style == "su" else rope_type
        if "partial_rotary_factor" in rope:
            config["partial_rotary_factor"] = rope.pop("partial_rotary_factor")
        config["rope_scaling"] = rope
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def build_fixture(path, config, options, prompts, seed):
    """Saves a random model under `seed` and returns the golden cases of the saved files."""
    shutil.rmtree(path, ignore_errors=True)
    torch.manual_seed(seed)
    attn = options.get("attn_implementation", "eager")
    config._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(config).eval()
    dtype = options.get("dtype")
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(path, max_shard_size=options.get("max_shard_size", "50GB"))
    if options.get("v4_keys"):
        rewrite_in_v4_keys(path, options["v4_keys"])
    # The reference runs in f32 on the saved files (upcast when stored in 16 bits).
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                 attn_implementation=attn).eval()
    digits = 6 if model.config.vocab_size <= 128 else 7  # the small-vocabulary fixtures are newer
    cases = []
    for prompt in prompts:
        tokens, margins, _ = greedy(model, prompt)
        case = {"prompt_token_ids": prompt, "logits": rounded(full_logits(model, prompt), digits),
                "greedy_token_ids": tokens, "greedy_margins": margins}
        if options.get("length_dependent"):
            # The rope table depends on the sequence length: the reference for a prefix is a full
            # forward over exactly that prefix.
            case["prefix_logits"] = rounded(torch.stack(
                [full_logits(model, prompt[:n])[-1] for n in range(1, len(prompt) + 1)]), digits)
        cases.append(case)
    return cases


def write_fixture(out_dir, name, config, options, prompts):
    path = os.path.join(out_dir, name)
    # Greedy steps must be decisive so float rounding cannot flip them: the first seed whose
    # smallest top-1/top-2 margin clears MIN_GREEDY_MARGIN wins (1234 for the original fixtures).
    for seed in range(1234, 1254):
        cases = build_fixture(path, copy.deepcopy(config), options, prompts, seed)
        margin = min(min(c["greedy_margins"]) for c in cases)
        if margin >= MIN_GREEDY_MARGIN or config.vocab_size > 128:
            break
    golden = {"generator": "tools/make_fixtures.py", "transformers_version": transformers.__version__,
              "torch_version": torch.__version__, "model_type": config.model_type, "seed": seed,
              "length_dependent_rope": bool(options.get("length_dependent")), "cases": cases}
    with open(os.path.join(path, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"{name}: seed {seed}, min greedy margin {margin:.4f}")


def write_v4_key_copy(out_dir, source, name):
    """The same checkpoint with its config rewritten in transformers 4.x keys; the weights and
    goldens are relative symlinks to the source fixture's, so the copy costs no space."""
    src, dst = os.path.join(out_dir, source), os.path.join(out_dir, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    for entry in sorted(os.listdir(src)):
        if entry == "config.json":
            shutil.copy(os.path.join(src, entry), dst)
        else:
            os.symlink(os.path.join("..", source, entry), os.path.join(dst, entry))
    with open(os.path.join(dst, "config.json")) as f:
        config = json.load(f)
    rope = config.pop("rope_parameters")
    config["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        rope["type"] = rope.pop("rope_type")
        config["rope_scaling"] = rope
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"{name}: copy of {source} with 4.x rope keys")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "fixtures", "models"))
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    for name, (config, options, prompts) in fixtures().items():
        if args.only and name not in args.only:
            continue
        write_fixture(args.out, name, config, options, prompts)
    if not args.only or "llama_linear_v4keys" in args.only:
        write_v4_key_copy(args.out, "llama_linear", "llama_linear_v4keys")
    if not args.only or "posenc" in args.only:
        posenc_tables.write(os.path.join(args.out, "..", "posenc", "posenc_tables.json"))


if __name__ == "__main__":
    main()
