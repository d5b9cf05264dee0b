#!/usr/bin/env python3
"""Trains the demo model shipped in models/demo/: a small Llama on the King James Bible.

The demo model exists so that a fresh checkout can start ropewire-server and get recognisable text
back without downloading anything. It is a toy: a few million parameters trained for minutes on
one CPU thread, so it continues Bible-like prompts in KJV style and knows nothing else.

What it does:
  1. Reads the King James Version (public domain) as Debian ships it: the `bible-kjv-text` package
     holds the compressed text and the `bible-kjv` package its reader (`bible`), which prints it.
     Chapter headings and verse numbers are dropped; each verse becomes one line.
  2. Trains a byte-level BPE tokenizer (Llama-3 split regex + ByteLevel, ByteLevel decoder) with
     `<|begin_of_text|>` (BOS, id 0) and `<|end_of_text|>` (EOS, id 1); a TemplateProcessing
     post-processor prepends BOS, as Llama-3's tokenizer does.
  3. Trains a LlamaForCausalLM (GQA, tied embeddings, RoPE theta 10000) with plain PyTorch: AdamW,
     warmup then cosine decay, batches of random windows that each start at a verse boundary
     after a BOS, so that "BOS + start of a verse" -- what a demo prompt looks like -- is in
     distribution.
  4. Saves a Hugging Face directory (safetensors in bfloat16, tokenizer, generation config),
     reloads it from disk, prints greedy and sampled continuations and writes the model card
     (README.md) with the numbers and samples of this very run.

The run is deterministic for a given seed and thread count. It uses one thread and is meant to be
run under `nice`, so that it can share a small machine:

  apt-get install -y bible-kjv-text bible-kjv      # only needed to retrain
  nice -n 19 tools/train_demo_model.py --out models/demo
  tools/train_demo_model.py --quick --out /tmp/demo  # pipeline check in well under a minute

Requirements: tools/requirements.txt.
"""
import argparse
import json
import math
import os
import random
import shlex
import shutil
import subprocess
import sys
import time

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig,
                          LlamaForCausalLM, PreTrainedTokenizerFast)

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
# Llama-3's pre-tokenizer split; ropewire's tokenizer implements the same regex semantics.
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PROMPTS = ["In the beginning", "And the LORD said", "The LORD is my shepherd", "Blessed are the",
           "And Jesus answered"]
# Every 100th chapter is held out to measure how far the model generalises beyond memorising.
HOLDOUT_EVERY = 100


def read_kjv(bible_cmd):
    """Returns the KJV as a list of chapters, each a list of verse strings."""
    # `-l0` disables line wrapping, so every verse is one line "  N text" under a "Book C" heading.
    out = subprocess.run([bible_cmd, "-l0", "gen1:1-rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    chapters = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            chapters.append([])
            continue
        number, text = line.strip().split(" ", 1)
        if not number.isdigit():
            raise ValueError(f"unexpected line in the bible output: {line!r}")
        chapters[-1].append(text.strip())
    verses = sum(len(c) for c in chapters)
    # The KJV has 1189 chapters and 31102 verses; anything else means the reader changed format.
    if len(chapters) != 1189 or verses != 31102:
        raise ValueError(f"expected 1189 chapters / 31102 verses, got {len(chapters)} / {verses}")
    return chapters


def train_tokenizer(lines, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # All 256 byte symbols are in the alphabet, so any UTF-8 text encodes, not just the corpus.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2,
                                  special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    bos_id, eos_id = tok.token_to_id(BOS), tok.token_to_id(EOS)
    assert (bos_id, eos_id) == (0, 1), (bos_id, eos_id)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, bos_id)])
    return tok


def encode_chapters(tok, chapters):
    """Encodes each chapter as one token stream with a verse per line.

    Returns (ids, verse_starts): the chapter's tokens and the offsets where each verse begins.
    Verses are encoded separately and concatenated; this equals encoding the joined text because
    the split regex never joins a newline to the letter that starts the next verse.
    """
    out = []
    for verses in chapters:
        encs = tok.encode_batch([v + "\n" for v in verses], add_special_tokens=False)
        ids, starts = [], []
        for e in encs:
            starts.append(len(ids))
            ids.extend(e.ids)
        out.append((ids, starts))
    return out


class Windows:
    """Random training windows: BOS, then `context - 1` tokens starting at a verse boundary.

    Chapters are laid end to end as BOS chapter EOS, so a window that runs past a chapter's end
    sees the EOS and the next chapter's BOS, and the model learns where a document stops.
    """

    def __init__(self, encoded, bos_id, eos_id, context):
        stream, starts = [], []
        for ids, verse_starts in encoded:
            stream.append(bos_id)
            starts.extend(len(stream) + s for s in verse_starts)
            stream.extend(ids)
            stream.append(eos_id)
        self.stream = torch.tensor(stream, dtype=torch.long)
        # Only starts with a full window after them; the tail is covered by earlier windows.
        self.starts = torch.tensor([s for s in starts if s + context - 1 <= len(stream)])
        self.bos_id, self.context = bos_id, context

    def tokens(self):
        return len(self.stream)

    def batch(self, batch_size, gen):
        picks = self.starts[torch.randint(len(self.starts), (batch_size,), generator=gen)]
        offsets = torch.arange(self.context - 1)
        body = self.stream[picks[:, None] + offsets[None, :]]
        bos = torch.full((batch_size, 1), self.bos_id, dtype=torch.long)
        return torch.cat([bos, body], dim=1)


def lr_at(step, steps, peak, warmup, floor_ratio=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (floor_ratio + (1 - floor_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_of(model, x, autocast):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=x).logits
    # Every position predicts the next token; the BOS in column 0 is never a target.
    return torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                             x[:, 1:].reshape(-1))


@torch.no_grad()
def evaluate(model, windows, batches, batch_size, autocast, seed):
    # A fixed generator makes the estimate comparable between evaluations.
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    total = sum(loss_of(model, windows.batch(batch_size, gen), autocast).item()
                for _ in range(batches))
    model.train()
    return total / batches


def build_model(args, vocab_size):
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads, max_position_embeddings=512, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True, bos_token_id=0, eos_token_id=1, initializer_range=0.02)
    model = LlamaForCausalLM(config)
    # On one CPU thread, eager attention over 128-token windows trains faster than SDPA's CPU
    # flash kernel, whose bf16 backward dominated the step. Inference is unaffected (the saved
    # config does not pin an implementation).
    model.set_attn_implementation("eager")
    return model


def train(args, model, train_windows, val_windows):
    # Weight decay on matrices only: norms and the (tied) embedding are left alone.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    start = time.time()
    smooth = None
    deadline = start + args.max_minutes * 60 if args.max_minutes else None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        loss = loss_of(model, train_windows.batch(args.batch, gen), args.bf16_autocast)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        # The deadline only guards a shared machine against a much slower run than planned: it
        # cuts the schedule short, and the card's command then names the step it stopped at
        # (--stop-after), which reproduces the run without depending on the machine's speed.
        last = (step + 1 == args.steps or step + 1 == args.stop_after
                or (deadline is not None and time.time() > deadline))
        if (step + 1) % args.log_every == 0 or last:
            line = {"step": step + 1, "loss": round(smooth, 4),
                    "lr": round(opt.param_groups[0]["lr"], 6),
                    "elapsed_s": round(time.time() - start, 1)}
            if (step + 1) % args.eval_every == 0 or last:
                line["val_loss"] = round(evaluate(model, val_windows, args.eval_batches, args.batch,
                                                  args.bf16_autocast, args.seed), 4)
            history.append(line)
            print(json.dumps(line), flush=True)
        if last:
            break
    final = {"steps_done": history[-1]["step"], "train_loss": history[-1]["loss"],
             "val_loss": history[-1]["val_loss"], "train_seconds": round(time.time() - start, 1)}
    # A clean train-set estimate over the same number of windows as validation, on the f32 model.
    final["train_loss_eval"] = round(evaluate(model, train_windows, args.eval_batches, args.batch,
                                              args.bf16_autocast, args.seed), 4)
    return final


def save(args, model, tok, out):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    # bfloat16 halves the file; ropewire widens bf16 to f32 on load, and so does the reload below.
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   model_max_length=512, clean_up_tokenization_spaces=False)
    fast.save_pretrained(out)
    GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1).save_pretrained(out)


def samples(out, max_new_tokens, seed):
    """Generates from the saved directory, in f32 like ropewire, so the card shows what ships."""
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    result = []
    for prompt in PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        assert ids[0, 0].item() == tok.bos_token_id and (ids[0] == tok.bos_token_id).sum() == 1
        greedy = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
        torch.manual_seed(seed)
        sampled = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=True,
                                 temperature=0.8, top_k=40)
        result.append({
            "prompt": prompt, "prompt_ids": ids[0].tolist(),
            "greedy_ids": greedy[0, ids.shape[1]:].tolist(),
            "greedy": tok.decode(greedy[0], skip_special_tokens=True),
            "sampled": tok.decode(sampled[0], skip_special_tokens=True)})
    return result


def model_card(args, stats, sample_list):
    def block(text):
        return "```\n" + text.strip() + "\n```"

    greedy = "\n\n".join(block(s["greedy"]) for s in sample_list)
    sampled = "\n\n".join(block(s["sampled"]) for s in sample_list)
    first = sample_list[0]
    steps = f"{stats['steps_done']} steps"
    if stats["steps_done"] < args.steps:
        steps += f" (the first {stats['steps_done']} of a {args.steps}-step schedule)"
    check_ids = ",".join(map(str, first["prompt_ids"]))
    bf16 = ", bf16 matmuls (autocast) over f32 weights" if args.bf16_autocast else ""
    return f"""# ropewire demo model

A toy Llama-family language model trained on the King James Bible, shipped with ropewire so that
the server has something to answer with out of the box. It continues Bible-like prompts with
recognisable KJV-style text (often verses it has memorised) and knows nothing else: it is for
demonstrating and load-testing the service, not a useful language model.

Everything in this folder was written by `tools/train_demo_model.py`; this card included.

## Data

The King James Version (1611), which is in the public domain, as Debian ships it in the
`bible-kjv-text` package (read with `bible` from the `bible-kjv` package). Chapter headings and
verse numbers are dropped; each verse is one line; each chapter is one document
(`{BOS}` ... `{EOS}`). Every {HOLDOUT_EVERY}th chapter ({stats['val_chapters']} of 1189) is held out
for validation. Training set: {stats['train_tokens']:,} tokens.

## Tokenizer

Byte-level BPE trained on the same text with the `tokenizers` library: Llama-3 split regex,
ByteLevel pre-tokenizer and decoder, {stats['vocab_size']} tokens. `{BOS}` (id 0) is BOS and
`{EOS}` (id 1) is EOS; the post-processor prepends BOS to every encoding, as Llama-3's does.
Any UTF-8 text encodes (all 256 bytes are in the vocabulary), but only English in KJV spelling
encodes compactly.

## Architecture

`LlamaForCausalLM`: {args.layers} layers, hidden size {args.hidden}, {args.heads} attention heads
with {args.kv_heads} key-value heads (GQA, head size {args.hidden // args.heads}), SwiGLU MLP of width
{args.intermediate}, RMSNorm, RoPE (theta 10000), tied input and output embeddings,
`max_position_embeddings` 512 (trained on windows of {args.context} tokens). {stats['params']:,}
parameters, stored in bfloat16 ({stats['weights_bytes']:,} bytes of safetensors; ropewire and the
samples below widen them to f32).

## Training

```
{stats['command']}
```

Plain PyTorch, seed {args.seed}, one CPU thread: {steps} of {args.batch} random windows
of {args.context} tokens (BOS, then text from a random verse start), AdamW (betas 0.9/0.95, weight
decay 0.1 on matrices), peak learning rate {args.lr} after {args.warmup} warmup steps, cosine decay
to a tenth of it, gradient clipping at 1.0{bf16}. Training took
{stats['train_seconds'] / 60:.1f} minutes on one thread of a shared machine.

Final loss (nats per token): train {stats['train_loss_eval']}, held-out chapters
{stats['val_loss']}; the gap between them is memorisation of the training text.

## Samples

Generated by transformers from this folder (weights widened to f32), 48 new tokens.

Greedy:

{greedy}

Sampled (temperature 0.8, top-k 40, seed {args.seed}):

{sampled}

ropewire must reproduce transformers' greedy ids. For "{first['prompt']}" (ids `{check_ids}`,
BOS first),

```
build/model/ropewire-generate --model models/demo --prompt-token-ids {check_ids} --max-tokens 40
```

prints

```
{json.dumps(first['greedy_ids'][:40], separators=(",", ":"))}
```
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="models/demo")
    p.add_argument("--bible", default="bible", help="the bible-kjv reader program")
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--intermediate", type=int, default=704)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop training early after this long (cuts the LR schedule short)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many steps of the --steps schedule")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=1611)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; results depend on it (float summation order)")
    p.add_argument("--bf16-autocast", action=argparse.BooleanOptionalAction, default=True,
                   help="bf16 matmuls (fast on CPUs with AMX/AVX512-BF16); f32 master weights")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-batches", type=int, default=8)
    p.add_argument("--sample-tokens", type=int, default=48)
    p.add_argument("--quick", action="store_true",
                   help="a few dozen steps, smaller vocabulary: checks the pipeline, not quality")
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup, args.vocab_size = 40, 5, 1024
        args.log_every, args.eval_every, args.eval_batches = 10, 20, 2
    return args


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    command = "nice -n 19 tools/train_demo_model.py " + " ".join(shlex.quote(a)
                                                                  for a in sys.argv[1:])

    chapters = read_kjv(args.bible)
    train_ch = [c for i, c in enumerate(chapters) if i % HOLDOUT_EVERY != HOLDOUT_EVERY - 1]
    val_ch = [c for i, c in enumerate(chapters) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    # The tokenizer sees the training chapters only, so validation measures the whole pipeline.
    tok = train_tokenizer((v + "\n" for c in train_ch for v in c), args.vocab_size)
    bos_id, eos_id = tok.token_to_id(BOS), tok.token_to_id(EOS)
    train_windows = Windows(encode_chapters(tok, train_ch), bos_id, eos_id, args.context)
    val_windows = Windows(encode_chapters(tok, val_ch), bos_id, eos_id, args.context)
    text_bytes = sum(len(v) + 1 for c in train_ch for v in c)
    print(f"corpus: {len(train_ch)} train / {len(val_ch)} held-out chapters, "
          f"{train_windows.tokens():,} train tokens ({text_bytes / train_windows.tokens():.2f} "
          f"bytes/token), vocab {tok.get_vocab_size()}", flush=True)

    model = build_model(args, tok.get_vocab_size())
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params:,} parameters", flush=True)
    stats = train(args, model, train_windows, val_windows)
    if args.max_minutes and stats["steps_done"] < args.steps:
        # Record the run as the time-independent command that reproduces it.
        argv, i = sys.argv[1:], 0
        while i < len(argv):
            if argv[i].startswith("--max-minutes"):
                del argv[i:i + (1 if "=" in argv[i] else 2)]
            else:
                i += 1
        argv += ["--stop-after", str(stats["steps_done"])]
        command = "nice -n 19 tools/train_demo_model.py " + " ".join(map(shlex.quote, argv))

    save(args, model, tok, args.out)
    sample_list = samples(args.out, args.sample_tokens, args.seed)
    for s in sample_list:
        print(f"\n[greedy]  {s['greedy']!r}\n[sampled] {s['sampled']!r}")
    # What `ropewire-generate --prompt-token-ids` must reproduce.
    first = sample_list[0]
    print(f"\n{first['prompt']!r}: prompt ids {','.join(map(str, first['prompt_ids']))}; "
          f"greedy ids {first['greedy_ids']}")

    stats.update(params=params, vocab_size=tok.get_vocab_size(), command=command,
                 train_tokens=train_windows.tokens(), val_chapters=len(val_ch),
                 weights_bytes=os.path.getsize(os.path.join(args.out, "model.safetensors")))
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(model_card(args, stats, sample_list))
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(json.dumps({**stats, "dir_bytes": total}), flush=True)
    if total >= 16 * 1024 * 1024:
        sys.exit(f"{args.out} is {total} bytes; the demo model must stay under 16 MB")


if __name__ == "__main__":
    main()
