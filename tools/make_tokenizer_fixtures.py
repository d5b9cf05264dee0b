#!/usr/bin/env python3
"""Trains the small tokenizers ropewire's tokenizer tests use and writes reference outputs.

Everything expected by tests/tokenizer comes from the reference `tokenizers` library (pinned in
tools/requirements.txt); nothing here calls ropewire.

Base tokenizers (trained on tools/tokenizer_training_text.txt, written to
tests/fixtures/tokenizers/<name>/ as a model directory):
  bytelevel_llama3      byte-level BPE, Llama-3 Split regex + ByteLevel, ignore_merges, BOS template
  bytelevel_gpt2        byte-level BPE, ByteLevel pre-tokenizer with GPT-2's own regex
  sentencepiece_llama2  SentencePiece-style BPE: Prepend/Replace normalizer, byte_fallback, <unk>,
                        legacy "a b" merges, Llama-2 decoder chain
  bpe_word_affixes      word-level BPE with "##" continuing-subword prefix, "</w>" end-of-word
                        suffix, [UNK], NFKC + Lowercase, Whitespace pre-tokenizer, no decoder
Variants re-use a base file with some sections replaced ("overrides"; a dotted key such as
"model.byte_fallback" replaces one member of a section). Tests apply the same overrides.

For the base tokenizers and every variant, tests/fixtures/tokenizers/reference/<name>.json holds,
for every line of corpus.json and 30 seeded random mixtures of tricky pieces: the ids with and
without special tokens, and the decode of the ids with skip_special_tokens false and true; plus
decodes of random slices of those ids, of byte sequences that are not valid UTF-8 spelled with
byte tokens, and of random id sequences. A decode the reference panics on is stored as null.

Run: /opt/rw-tools/bin/python tools/make_tokenizer_fixtures.py
The reference trainer breaks ties between equally frequent pairs in hash order, so a rerun can
change the vocabularies; the references are rewritten with them, so the tests stay consistent.
"""

import copy
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "tokenizers"
REFERENCE = FIXTURES / "reference"
TRAINING_TEXT = ROOT / "tools" / "tokenizer_training_text.txt"
CORPUS = FIXTURES / "corpus.json"

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = ("{% for message in messages %}<|begin_of_text|>{{ message['role'] }}\n"
                 "{{ message['content'] }}<|eot_id|>{% endfor %}")
SEED = 20240611


def training_paragraphs():
    """The training text as paragraphs, each keeping its newlines."""
    text = TRAINING_TEXT.read_text(encoding="utf-8")
    return [p + "\n\n" for p in text.split("\n\n") if p]


def added_token_json(tok):
    return json.loads(tok.to_str())["added_tokens"]


def train_llama3():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<s>",
                "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_paragraphs(), trainer)
    tok.add_tokens([AddedToken("<tool_call>", normalized=False, special=False),
                    AddedToken("</tool_call>", normalized=False, special=False)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True  # as Llama 3 ships it
    return data


def train_gpt2():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<|endoftext|>"],
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_paragraphs(), trainer)
    return json.loads(tok.to_str())


def train_sentencepiece():
    """Llama-2 style: "▁" for spaces, byte fallback tokens <0x00>..<0xFF> in the vocabulary."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    # Train on words (split before each "▁"); the shipped file has no pre-tokenizer, like Llama 2.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never",
                                                 split=True)
    trainer = trainers.BpeTrainer(vocab_size=1500, show_progress=False, limit_alphabet=300,
                                  special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens)
    tok.train_from_iterator(training_paragraphs(), trainer)
    data = json.loads(tok.to_str())
    # The byte tokens belong to the model vocabulary, not to the added tokens.
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in byte_tokens]
    data["pre_tokenizer"] = None
    merges = data["model"]["merges"]
    assert all(" " not in a and " " not in b for a, b in merges)
    data["model"]["merges"] = [f"{a} {b}" for a, b in merges]  # the legacy string format
    data["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    tok = Tokenizer.from_str(json.dumps(data))
    tok.add_special_tokens([AddedToken("<|endoftext|>", normalized=False, special=True)])
    tok.add_tokens([AddedToken("<tool_call>", normalized=False, special=False),
                    AddedToken("</tool_call>", normalized=False, special=False)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return json.loads(tok.to_str())


def train_word_affixes():
    """Classic word-level BPE (as in BERT-era and CLIP-style files): "##" marks a continuing
    subword, "</w>" ends a word, unknown characters become [UNK]; no decoder."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##",
                               end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]", "<|endoftext|>"],
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                  limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(training_paragraphs(), trainer)
    return json.loads(tok.to_str())


def apply_overrides(base, overrides):
    data = copy.deepcopy(base)
    for key, value in overrides.items():
        target = data
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return data


def added(content, token_id, special=False, normalized=False, lstrip=False, rstrip=False,
          single_word=False):
    return {"id": token_id, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def byte_level(use_regex=False, add_prefix_space=False):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
            "use_regex": use_regex}


def split(pattern, behavior, invert=False, regex=True):
    return {"type": "Split", "pattern": {"Regex" if regex else "String": pattern},
            "behavior": behavior, "invert": invert}


def template(single, specials):
    return {"type": "TemplateProcessing", "single": single, "pair": single,
            "special_tokens": {name: {"id": name, "ids": [i], "tokens": [name]}
                               for name, i in specials}}


def special(name):
    return {"SpecialToken": {"id": name, "type_id": 0}}


SEQUENCE_A = {"Sequence": {"id": "A", "type_id": 0}}


def llama3_variants(base):
    ids = {t["content"]: t["id"] for t in base["added_tokens"]}
    next_id = max(max(base["model"]["vocab"].values()), max(ids.values())) + 1
    sequence = lambda *steps: {"type": "Sequence", "pretokenizers": list(steps)}
    flagged = copy.deepcopy(base["added_tokens"]) + [
        added("ropewire", next_id, single_word=True),
        added(" <mask>", next_id + 1, lstrip=True, rstrip=True),
        added("café", next_id + 2, normalized=True),
    ]
    for token in flagged:
        if token["content"] == "<s>":
            token["lstrip"] = True
        if token["content"] == "</s>":
            token["rstrip"] = True
    return {
        "llama3_nfc": {"normalizer": {"type": "NFC"}},
        "llama3_nfkc_lowercase": {
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"},
                                                               {"type": "Lowercase"}]},
            "added_tokens": base["added_tokens"] + [
                added("ropewire", next_id, normalized=True),
                added("Straße", next_id + 1, normalized=True)]},
        "llama3_nfd_strip_accents": {
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "NFD"}, {"type": "StripAccents"},
                {"type": "Strip", "strip_left": True, "strip_right": True},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]}},
        "llama3_nfkd": {"normalizer": {"type": "NFKD"}},
        "llama3_added_flags": {"added_tokens": flagged},
        "llama3_split_behaviors": {"pre_tokenizer": sequence(
            split(r"\p{N}", "Contiguous"), split(" ", "MergedWithNext", regex=False),
            split(r"[.,!?;]", "MergedWithPrevious"), split(r"\t+", "Removed"),
            split(r"\p{Han}", "Isolated", invert=True), split(r"^\s*$", "Removed"),
            byte_level())},
        "llama3_char_splits": {"pre_tokenizer": sequence(
            {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Contiguous"},
            {"type": "Digits", "individual_digits": True}, byte_level())},
        "llama3_whitespace": {"pre_tokenizer": sequence(
            {"type": "Whitespace"}, {"type": "Digits", "individual_digits": False},
            byte_level())},
        "llama3_bert_pre_tokenizer": {"pre_tokenizer": sequence(
            {"type": "BertPreTokenizer"}, byte_level())},
        "llama3_merges_without_ignore": {"model.ignore_merges": False},
        "llama3_roberta_processing": {"post_processor": {
            "type": "RobertaProcessing", "sep": ["</s>", ids["</s>"]], "cls": ["<s>", ids["<s>"]],
            "trim_offsets": True, "add_prefix_space": False}},
        "llama3_bos_eos_template": {"post_processor": template(
            [special("<|begin_of_text|>"), SEQUENCE_A, special("<|end_of_text|>")],
            [("<|begin_of_text|>", ids["<|begin_of_text|>"]),
             ("<|end_of_text|>", ids["<|end_of_text|>"])])},
        "llama3_no_decoder": {"decoder": None},
    }


def gpt2_variants(base):
    return {
        "gpt2_add_prefix_space": {"pre_tokenizer": byte_level(use_regex=True,
                                                              add_prefix_space=True)},
        "gpt2_bytelevel_then_strip": {"decoder": {"type": "Sequence", "decoders": [
            byte_level(use_regex=True), {"type": "Strip", "content": " ", "start": 2, "stop": 2}]}},
    }


def sentencepiece_variants(base):
    ids = {t["content"]: t["id"] for t in base["added_tokens"]}
    metaspace = lambda scheme, split_words: {"type": "Metaspace", "replacement": "▁",
                                              "prepend_scheme": scheme, "split": split_words}
    decoder_seq = lambda *steps: {"type": "Sequence", "decoders": list(steps)}
    replace_space = {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}
    return {
        "sp_metaspace_first": {
            "normalizer": None, "pre_tokenizer": metaspace("first", False),
            "decoder": metaspace("first", True),
            "post_processor": template([special("<s>"), SEQUENCE_A, special("</s>")],
                                       [("<s>", ids["<s>"]), ("</s>", ids["</s>"])])},
        "sp_metaspace_always_split": {
            "normalizer": None, "pre_tokenizer": metaspace("always", True),
            "decoder": decoder_seq({"type": "ByteFallback"}, metaspace("always", True))},
        "sp_metaspace_never": {
            "normalizer": None, "pre_tokenizer": metaspace("never", True),
            "decoder": decoder_seq(replace_space, {"type": "ByteFallback"}, {"type": "Fuse"})},
        "sp_unk_fused": {"model.byte_fallback": False},
        "sp_unk_unfused": {"model.byte_fallback": False, "model.fuse_unk": False},
        "sp_joined_replace_strip": {"decoder": decoder_seq(
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Replace", "pattern": {"String": "▁▁"}, "content": "=="},
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "Strip", "content": " ", "start": 2, "stop": 1})},
        "sp_joined_metaspace": {"decoder": decoder_seq(
            {"type": "ByteFallback"}, {"type": "Fuse"}, metaspace("always", True))},
        "sp_regex_replace_decoder": {"decoder": decoder_seq(
            {"type": "Replace", "pattern": {"Regex": "▁+"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Replace", "pattern": {"Regex": "(?i)HELLO"}, "content": "bye"})},
    }


def decode_or_none(tok, ids, skip_special_tokens):
    """The reference decode, or None where the reference itself panics (its Strip decoder
    indexes out of bounds when asked to strip more characters than the text has)."""
    saved_stderr = os.dup(2)  # keep the panic message out of the output
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return tok.decode(ids, skip_special_tokens=skip_special_tokens)
    except BaseException as error:  # pyo3 panics derive from BaseException
        if type(error).__name__ != "PanicException":
            raise
        return None
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


def decode_pair(tok, ids):
    return decode_or_none(tok, ids, False), decode_or_none(tok, ids, True)


# Byte strings that exercise UTF-8 error handling: truncated sequences, overlongs, surrogates,
# values above U+10FFFF, stray continuation bytes, valid text between them.
TRICKY_BYTES = [b"\xe4\xb8\xad", b"\xe4\xb8A", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xf0\x80",
                b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe0\x80\x80",
                b"\x80\x80a", b"a\xff\xfeb", b"\xf0\x9f\x98\x80\xf0\x9f", b"\xc3", b"ok\xe2\x82"]


def byte_token_ids(tok, data):
    """Ids spelling `data` one byte per token: byte-level characters or <0xNN> tokens."""
    vocab = tok.get_vocab()
    by_byte = {byte_of_char(c): c for c in pre_tokenizers.ByteLevel.alphabet()}
    ids = []
    for b in data:
        name = f"<0x{b:02X}>"
        if name not in vocab and by_byte[b] not in vocab:
            return None  # a tokenizer without byte tokens
        ids.append(vocab[name] if name in vocab else vocab[by_byte[b]])
    return ids


def byte_of_char(char):
    """The byte a GPT-2 byte-level alphabet character stands for."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    shifted = [b for b in range(256) if b not in keep]
    code = ord(char)
    return code if code in keep else shifted[code - 256]


# Random mixtures of the pieces tokenizers trip over, added to the corpus lines as extra cases.
RANDOM_POOLS = ["abcXYZ", "  \t\n\r", "0123456789", "éàüßÆø", "\u0301\u0308\u0327",
                "中文日本語한국어", "😀👍🏽\u200d👩💻🏳️🌈", ".,!?'\"-()[]{}<>|_", "ΣσςİıIi",
                "\u00a0\u2003\u3000\u0085\u2028", "ﬁ½Ⅻ２", "'s 're 'LL"]
RANDOM_INSERTS = ["<s>", "</s>", "<|endoftext|>", "<|begin_of_text|>", "<tool_call>",
                  " <mask> ", "ropewire", "café", "Straße", "<unk>"]


def random_lines(rng, count):
    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(1, 9)):
            if rng.random() < 0.15:
                parts.append(rng.choice(RANDOM_INSERTS))
            else:
                pool = rng.choice(RANDOM_POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randrange(1, 6))))
        lines.append("".join(parts))
    return lines


def reference_cases(tok, corpus, rng):
    cases, slices = [], []
    for text in corpus:
        with_special = tok.encode(text, add_special_tokens=True).ids
        without = tok.encode(text, add_special_tokens=False).ids
        decoded, decoded_skip = decode_pair(tok, with_special)
        cases.append({"text": text, "ids": with_special, "ids_no_special": without,
                      "decoded": decoded, "decoded_skip_special": decoded_skip})
        for _ in range(3 if len(with_special) > 2 else 0):
            begin = rng.randrange(0, len(with_special) - 1)
            end = rng.randrange(begin + 1, len(with_special) + 1)
            part = with_special[begin:end]
            slices.append(dict(zip(("ids", "decoded", "decoded_skip_special"),
                                   (part, *decode_pair(tok, part)))))
    plain = tok.encode("a", add_special_tokens=False).ids
    for data in TRICKY_BYTES:
        spelled = byte_token_ids(tok, data)
        if spelled is None:
            break
        for part in (spelled, plain + spelled + plain):
            slices.append(dict(zip(("ids", "decoded", "decoded_skip_special"),
                                   (part, *decode_pair(tok, part)))))
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(40):
        part = [rng.randrange(vocab_size) for _ in range(rng.randrange(1, 12))]
        slices.append(dict(zip(("ids", "decoded", "decoded_skip_special"),
                               (part, *decode_pair(tok, part)))))
    return cases, slices


def write_reference(name, base_name, overrides, data, corpus, rng):
    tok = Tokenizer.from_str(json.dumps(data))
    cases, slices = reference_cases(tok, corpus, rng)
    REFERENCE.mkdir(parents=True, exist_ok=True)
    out = {"name": name, "base": base_name, "overrides": overrides,
           "tokenizers_version": tokenizers.__version__, "cases": cases, "slices": slices}
    path = REFERENCE / f"{name}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=None, separators=(",", ":")) +
                    "\n", encoding="utf-8")
    return path


def write_model_dir(name, data, facts):
    """tokenizer.json plus the config files transformers writes for such a model."""
    from transformers import GenerationConfig, LlamaConfig, PreTrainedTokenizerFast
    directory = FIXTURES / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) +
                                              "\n", encoding="utf-8")
    tok = Tokenizer.from_str(json.dumps(data))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **facts["tokenizer_config"])
    with tempfile.TemporaryDirectory() as tmp:
        fast.save_pretrained(tmp)
        for extra in ("tokenizer_config.json", "chat_template.jinja"):
            if (Path(tmp) / extra).exists():
                shutil.copy(Path(tmp) / extra, directory / extra)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    LlamaConfig(vocab_size=vocab_size, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                num_attention_heads=1, **facts["config"]).to_json_file(directory / "config.json")
    if "generation_config" in facts:
        GenerationConfig(**facts["generation_config"]).to_json_file(
            directory / "generation_config.json")


def main():
    rng = random.Random(SEED)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8")) + random_lines(rng, 30)
    if REFERENCE.exists():
        shutil.rmtree(REFERENCE)
    bases = {"bytelevel_llama3": (train_llama3(), llama3_variants),
             "bytelevel_gpt2": (train_gpt2(), gpt2_variants),
             "sentencepiece_llama2": (train_sentencepiece(), sentencepiece_variants),
             "bpe_word_affixes": (train_word_affixes(), lambda base: {})}
    for name, (data, variants) in bases.items():
        ids = {t["content"]: t["id"] for t in data["added_tokens"]}
        write_model_dir(name, data, model_facts(name, ids))
        write_reference(name, name, {}, data, corpus, rng)
        for variant, overrides in variants(data).items():
            write_reference(variant, name, overrides, apply_overrides(data, overrides), corpus,
                            rng)
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    print(f"wrote fixtures to {FIXTURES} ({total / 1e6:.2f} MB, tokenizers "
          f"{tokenizers.__version__})")


def model_facts(name, ids):
    if name == "bytelevel_llama3":
        return {"tokenizer_config": {"bos_token": "<|begin_of_text|>",
                                     "eos_token": "<|end_of_text|>",
                                     "chat_template": CHAT_TEMPLATE},
                "config": {"bos_token_id": ids["<|begin_of_text|>"],
                           "eos_token_id": ids["<|end_of_text|>"]},
                "generation_config": {"bos_token_id": ids["<|begin_of_text|>"],
                                      "eos_token_id": [ids["<|end_of_text|>"],
                                                       ids["<|eot_id|>"]]}}
    if name == "sentencepiece_llama2":
        return {"tokenizer_config": {"bos_token": "<s>", "eos_token": "</s>",
                                     "unk_token": "<unk>", "add_bos_token": True,
                                     "add_eos_token": False},
                "config": {"bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"]}}
    return {"tokenizer_config": {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"},
            "config": {"bos_token_id": ids["<|endoftext|>"],
                       "eos_token_id": ids["<|endoftext|>"]}}


if __name__ == "__main__":
    main()
