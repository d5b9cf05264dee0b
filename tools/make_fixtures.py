#!/usr/bin/env python3
"""Writes the tiny model fixtures and their golden outputs with the reference implementation.

Each fixture is a Hugging Face model directory created by transformers itself
(`AutoModelForCausalLM.from_config` under a fixed seed, `save_pretrained` to safetensors) plus a
`golden.json` holding, for several prompts, the f32 logits of every prompt position from a full
forward pass and a 32-token greedy continuation (EOS ignored), each step's top-1/top-2 logit
margin included so tests can tell a real mismatch from a near tie.

Usage: tools/make_fixtures.py [--out tests/fixtures/models] [--only NAME ...]
Requirements: tools/requirements.txt.
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

GREEDY_TOKENS = 32
# Large enough initial weights that logits are far from uniform, so greedy steps are decisive.
INIT_RANGE = 0.15

SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
             initializer_range=INIT_RANGE, bos_token_id=1, eos_token_id=2)


def fixtures():
    """name -> (config, save options, prompts). Prompts are lists of token ids."""
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
    }


def full_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def greedy(model, prompt):
    """Greedy continuation by full forwards (no cache), EOS ignored."""
    ids = list(prompt)
    tokens, margins = [], []
    for _ in range(GREEDY_TOKENS):
        last = full_logits(model, ids)[-1]
        top2 = torch.topk(last, 2).values
        nxt = int(torch.argmax(last))
        tokens.append(nxt)
        margins.append(float(top2[0] - top2[1]))
        ids.append(nxt)
    return tokens, margins


def rounded(rows):
    return [[float("%.7g" % v) for v in row] for row in rows.tolist()]


def write_fixture(out_dir, name, config, save_options, prompts):
    path = os.path.join(out_dir, name)
    shutil.rmtree(path, ignore_errors=True)
    torch.manual_seed(1234)
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).eval()
    dtype = save_options.get("dtype")
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(path, max_shard_size=save_options.get("max_shard_size", "50GB"))
    # The reference runs in f32 on the saved weights (upcast when stored in 16 bits).
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    cases = []
    for prompt in prompts:
        tokens, margins = greedy(model, prompt)
        cases.append({"prompt_token_ids": prompt, "logits": rounded(full_logits(model, prompt)),
                      "greedy_token_ids": tokens, "greedy_margins": margins})
    golden = {"generator": "tools/make_fixtures.py", "transformers_version": transformers.__version__,
              "torch_version": torch.__version__, "model_type": config.model_type, "cases": cases}
    with open(os.path.join(path, "golden.json"), "w") as f:
        json.dump(golden, f)
    print(f"{name}: min greedy margin {min(min(c['greedy_margins']) for c in cases):.4f}")


def write_v4_key_copy(out_dir, source, name):
    """The same checkpoint with its config rewritten in transformers 4.x keys."""
    src, dst = os.path.join(out_dir, source), os.path.join(out_dir, name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
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
    for name, (config, save_options, prompts) in fixtures().items():
        if args.only and name not in args.only:
            continue
        write_fixture(args.out, name, config, save_options, prompts)
    if not args.only or "llama_linear_v4keys" in args.only:
        write_v4_key_copy(args.out, "llama_linear", "llama_linear_v4keys")


if __name__ == "__main__":
    main()
