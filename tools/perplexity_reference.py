#!/usr/bin/env python3
"""Reference perplexities computed by Hugging Face transformers, for ropewire's perplexity tests.

The windowing is ropewire's (model/perplexity.h) and llama.cpp's: the token stream is cut into
consecutive windows of --context tokens, the first token of each window becomes BOS when the
model has one, and only the second half of each window is scored (logits at position i predict
token i + 1 for i in [context/2, context-1)).

  # the KJV chapters the demo model never saw in training (every 100th), as plain text
  tools/perplexity_reference.py kjv-holdout --out tests/fixtures/text/kjv_holdout.txt
  # transformers' f32 perplexity of a model directory on a text
  tools/perplexity_reference.py score --model models/demo --text tests/fixtures/text/kjv_holdout.txt \
      --context 128 --max-windows 8 --out tests/fixtures/perplexity/demo_kjv.json

`kjv-holdout` needs Debian's bible-kjv and bible-kjv-text packages. Requirements:
tools/requirements.txt.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def kjv_holdout(args):
    from train_demo_model import HOLDOUT_EVERY, read_kjv
    chapters = read_kjv(args.bible)
    held_out = [c for i, c in enumerate(chapters) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1]
    with open(args.out, "w", encoding="utf-8") as f:
        for verses in held_out:
            f.write("".join(v + "\n" for v in verses))
    print(f"{args.out}: {len(held_out)} chapters")


def score(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.eval()
    text = open(args.text, encoding="utf-8").read()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    bos = model.config.bos_token_id if args.bos else None
    windows = len(ids) // args.context
    if args.max_windows:
        windows = min(windows, args.max_windows)
    first = args.context // 2
    total, count = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            window = ids[w * args.context:(w + 1) * args.context]
            if bos is not None:
                window[0] = bos
            logits = model(torch.tensor([window])).logits[0].double()
            logprobs = torch.log_softmax(logits[first:args.context - 1], dim=-1)
            targets = torch.tensor(window[first + 1:args.context])
            total -= logprobs.gather(1, targets[:, None]).sum().item()
            count += len(targets)
    result = {"model": os.path.basename(os.path.normpath(args.model)),
              "text": os.path.basename(args.text), "context": args.context, "windows": windows,
              "bos": bos is not None, "scored_tokens": count, "mean_nll": total / count,
              "perplexity": math.exp(total / count)}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kjv-holdout")
    k.add_argument("--bible", default="bible")
    k.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("--model", required=True)
    s.add_argument("--text", required=True)
    s.add_argument("--context", type=int, default=512)
    s.add_argument("--max-windows", type=int, default=0)
    s.add_argument("--no-bos", dest="bos", action="store_false",
                   help="keep each window's first token instead of replacing it with BOS")
    s.add_argument("--out", required=True)
    args = parser.parse_args()
    kjv_holdout(args) if args.command == "kjv-holdout" else score(args)


if __name__ == "__main__":
    main()
