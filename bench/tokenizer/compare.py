#!/usr/bin/env python3
"""Encode throughput of ropewire's tokenizer against the reference `tokenizers` library.

Both encode the same documents, on one thread, in the same run of this script:
  * ropewire: build/bench/tokenizer/ropewire-bench-tokenizer, one Encode call per document;
  * tokenizers: Tokenizer.from_file(...), with TOKENIZERS_PARALLELISM=false and
    RAYON_NUM_THREADS=1, measured two ways: encode() called once per document from Python, and
    encode_batch(documents), which stays on one thread when parallelism is off. The faster of
    the two is the baseline of the ratio, so Python call overhead cannot flatter ropewire.
Each side gets an untimed warm-up pass first (both cache words). Runs alternate between the two
sides; the figures are medians over --runs runs. Before timing, the ids of every document are
compared between the two, so the benchmark also checks exactness on a few MB of text.

Tokenizers: the committed fixtures (small vocabularies) and, unless --train-vocab 0, a Llama-3
style byte-level tokenizer with a 32000-token vocabulary trained here on the benchmark text.

Text: --text FILE, or by default the project's own text files (tracked sources, docs,
fixtures' corpus and training text) followed by the Python standard library's sources in
sorted order, up to --megabytes MB; cut into documents of about 4 KB at line ends.

Run: /opt/rw-tools/bin/python bench/tokenizer/compare.py [--build build] [--runs 7]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
import tokenizers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
DEFAULT_TOKENIZERS = ["bytelevel_llama3", "bytelevel_gpt2", "sentencepiece_llama2"]
TEXT_SUFFIXES = {".md", ".cc", ".h", ".py", ".txt", ".cmake", ".sh", ".proto", ".yaml", ".yml"}


def project_text():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    parts = [(ROOT / "tools" / "tokenizer_training_text.txt").read_text(encoding="utf-8")]
    parts += json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))
    for name in sorted(listed):
        path = ROOT / name
        if path.suffix in TEXT_SUFFIXES and path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def default_text(megabytes):
    text = project_text()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pieces, size = [text], len(text.encode())
    for path in sorted(stdlib.rglob("*.py")):
        if size >= megabytes * 1e6:
            break
        piece = path.read_text(encoding="utf-8", errors="replace")
        pieces.append(piece)
        size += len(piece.encode())
    return "\n".join(pieces)


def documents_of(text, size=4096):
    documents, current, length = [], [], 0
    for line in text.splitlines(keepends=True):
        current.append(line)
        length += len(line)
        if length >= size:
            documents.append("".join(current))
            current, length = [], 0
    if current:
        documents.append("".join(current))
    return documents


def train_large_vocab(text, vocab_size, directory):
    """A Llama-3 style byte-level tokenizer with a realistic vocabulary, trained on the
    benchmark text itself (the committed fixtures have small vocabularies, which means more
    merges per word than real models have)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from make_tokenizer_fixtures import LLAMA3_PATTERN
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(documents_of(text), trainer)
    path = Path(directory) / f"trained_{vocab_size}" / "tokenizer.json"
    path.parent.mkdir(parents=True)
    tok.save(str(path))
    return path


def run_ropewire(binary, tokenizer_path, documents_path, runs):
    out = subprocess.run([str(binary), "--tokenizer", str(tokenizer_path), "--documents",
                          str(documents_path), "--runs", str(runs)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def time_reference(tok, documents, mode):
    start = time.perf_counter()
    if mode == "encode":
        for document in documents:
            tok.encode(document)
    else:
        tok.encode_batch(documents)
    return time.perf_counter() - start


def fnv1a(ids):
    """The FNV-1a hash the C++ bench prints, over little-endian 32-bit ids."""
    value = 14695981039346656037
    for byte in np.asarray(ids, dtype="<u4").tobytes():
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value


def compare(name, path, binary, documents, documents_path, runs):
    tok = Tokenizer.from_file(str(path))
    reference_ids = [e.ids for e in tok.encode_batch(documents)]  # also the warm-up
    flat = [i for ids in reference_ids for i in ids]
    check = run_ropewire(binary, path, documents_path, 1)
    if check["tokens"] != len(flat) or check["ids_fnv1a"] != fnv1a(flat):
        sys.exit(f"{name}: ropewire's ids differ from the reference's on the benchmark text")
    megabytes = sum(len(d.encode()) for d in documents) / 1e6
    ours, reference = [], {"encode": [], "encode_batch": []}
    for _ in range(runs):
        ours.extend(run_ropewire(binary, path, documents_path, 1)["mb_per_s"])
        for mode in reference:
            reference[mode].append(megabytes / time_reference(tok, documents, mode))
    ours_median = statistics.median(ours)
    reference_medians = {mode: statistics.median(v) for mode, v in reference.items()}
    best_mode = max(reference_medians, key=reference_medians.get)
    return {"tokenizer": name, "tokens": len(flat), "ropewire_mb_s": ours_median,
            "tokenizers_encode_mb_s": reference_medians["encode"],
            "tokenizers_encode_batch_mb_s": reference_medians["encode_batch"],
            "ratio_vs_best": ours_median / reference_medians[best_mode]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"), help="CMake build directory")
    parser.add_argument("--text", help="UTF-8 text file to encode instead of the default")
    parser.add_argument("--megabytes", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokenizers", nargs="+", default=DEFAULT_TOKENIZERS,
                        help="fixture names under tests/fixtures/tokenizers")
    parser.add_argument("--train-vocab", type=int, default=32000,
                        help="also train and measure a byte-level tokenizer of this vocabulary "
                             "size on the text (0: skip)")
    args = parser.parse_args()
    binary = Path(args.build) / "bench" / "tokenizer" / "ropewire-bench-tokenizer"
    text = (Path(args.text).read_text(encoding="utf-8") if args.text
            else default_text(args.megabytes))
    documents = documents_of(text)
    print(f"text: {len(text.encode()) / 1e6:.2f} MB in {len(documents)} documents; "
          f"tokenizers {tokenizers.__version__}; median of {args.runs} runs, one thread")
    with tempfile.TemporaryDirectory() as scratch:
        paths = {name: FIXTURES / name / "tokenizer.json" for name in args.tokenizers}
        if args.train_vocab:
            paths[f"trained_{args.train_vocab}"] = train_large_vocab(text, args.train_vocab,
                                                                     scratch)
        documents_path = Path(scratch) / "documents.json"
        documents_path.write_text(json.dumps(documents, ensure_ascii=False), encoding="utf-8")
        results = [compare(name, path, binary, documents, documents_path, args.runs)
                   for name, path in paths.items()]
    print(f"{'tokenizer':<22}{'tokens':>10}{'ropewire':>12}{'tok.encode':>12}"
          f"{'tok.batch':>12}{'ratio':>8}   (MB/s)")
    for r in results:
        print(f"{r['tokenizer']:<22}{r['tokens']:>10}{r['ropewire_mb_s']:>12.2f}"
              f"{r['tokenizers_encode_mb_s']:>12.2f}{r['tokenizers_encode_batch_mb_s']:>12.2f}"
              f"{r['ratio_vs_best']:>7.2f}x")


if __name__ == "__main__":
    main()
