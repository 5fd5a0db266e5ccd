"""Tiny causal LMs and tokenizers built on the spot, so tests need no hub and no network.

Two tokenizer families cover the alignment cases that matter: GPT-2 style byte-level BPE (leading
spaces inside tokens, whitespace runs as separate tokens) and Llama style SentencePiece BPE
(a `▁` word marker, byte fallback for unseen characters, a BOS token added by the tokenizer).
Weights are random but seeded, so numbers are repeatable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer


# The project's real data lives beside the repository (../shared/data), on this workplace's
# machines at /work/shared/data; RBRIDGE_SHARED_DATA points elsewhere.
def _data_dir() -> Path:
    if "RBRIDGE_SHARED_DATA" in os.environ:
        return Path(os.environ["RBRIDGE_SHARED_DATA"])
    beside = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


DATA_DIR = _data_dir()


def corpus_texts(limit: int = 3000) -> list[str]:
    """Real benchmark text to train the tokenizers on (GSM8K train questions and solutions)."""
    texts = []
    with open(DATA_DIR / "gsm8k" / "train.jsonl", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= limit:
                break
            row = json.loads(line)
            texts += [row["question"], row["answer"]]
    return texts


def gpt2_style_tokenizer(texts: list[str], vocab_size: int = 1200):
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )


def llama_style_tokenizer(texts: list[str], vocab_size: int = 1200):
    """SentencePiece-like BPE with byte fallback; the tokenizer itself prepends `<s>`."""
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    # Train with word-level pre-splitting, as SentencePiece does, so merges never cross a `▁`;
    # then encode the Llama-2 way: normalizer only, no pre-tokenizer.
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials + byte_tokens, limit_alphabet=120
    )
    base.train_from_iterator(texts, trainer=trainer)
    model_json = json.loads(base.to_str())["model"]
    vocab, merges = (
        model_json["vocab"],
        [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_json["merges"]],
    )
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True)
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


# Llama-3's pre-tokenizer pattern: digits in groups of up to three, words with one leading
# non-letter, punctuation runs, newline runs.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def llama3_style_tokenizer(texts: list[str], vocab_size: int = 1200):
    """Byte-level BPE behind Llama-3's regex split; the tokenizer prepends `<|begin_of_text|>`."""
    from tokenizers import Regex
    from transformers import PreTrainedTokenizerFast

    bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[bos, eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                special_tokens=[(bos, tok.token_to_id(bos))],
            ),
        ]
    )  # fmt: skip
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)


def build_tiny_lm(
    out_dir: Path,
    *,
    family: str = "gpt2",
    seed: int = 0,
    n_layer: int = 2,
    n_embd: int = 32,
    texts: list[str] | None = None,
) -> Path:
    """Save a random-init causal LM and its tokenizer to `out_dir` (loadable by lm-eval's `hf`)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    texts = texts if texts is not None else corpus_texts()
    torch.manual_seed(seed)
    if family == "gpt2":
        tokenizer = gpt2_style_tokenizer(texts)
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tokenizer),
                n_positions=2048,
                n_embd=n_embd,
                n_layer=n_layer,
                n_head=2,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
    elif family in ("llama", "llama3"):
        tokenizer = (llama_style_tokenizer if family == "llama" else llama3_style_tokenizer)(texts)
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=n_embd,
                intermediate_size=2 * n_embd,
                num_hidden_layers=n_layer,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=2048,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                tie_word_embeddings=False,
            )
        )
    else:
        raise ValueError(f"unknown family {family!r}")
    model.eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
