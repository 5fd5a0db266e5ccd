"""Independent computations for the span-mask tasks, sharing no code with the package.

`as_released` follows the authors' scorer as published (LLM360/rBridge `rbridge/eval.py`,
`mask.py`, `metrics.py`), with a transformers forward pass standing in for vLLM's prompt
logprobs: the prompt ids come from tokenizing with the tokenizer's special tokens, the mask from
tokenizing without them, and position i of one is read against position i of the other. The
consistent numbers follow the README's definition, letter by letter, from a character scanner of
the tags.
"""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

OPENING, CLOSINGS = "<span>", ("</span>", "<\\span>")


@cache
def _load(model_dir: str):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    return tokenizer, model


def prompt_logprobs(model_dir, ids: list[int]) -> list[float]:
    """log p(ids[i] | ids[:i]) in float64 for i >= 1; 0.0 at position 0 (vLLM gives None)."""
    _, model = _load(str(model_dir))
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1).numpy()
    return [0.0] + [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]


def authors_extract(text: str):
    """The published `extract_span_offsets`: (clean text, span ranges or None)."""
    pattern = r"<span>(.*?)<[/\\]span>"
    if not re.search(pattern, text):
        return text, None
    ranges, parts, last, position = [], [], 0, 0
    for match in re.finditer(pattern, text):
        parts.append(text[last : match.start()])
        position += match.start() - last
        content = match.group(1)
        ranges.append((position, position + len(content)))
        parts.append(content)
        position += len(content)
        last = match.end()
    parts.append(text[last:])
    return "".join(parts), ranges


def authors_counts(text: str) -> tuple[int, int]:
    clean, ranges = authors_extract(text)
    scored = clean if ranges is None else "".join(clean[s:e] for s, e in ranges)
    return len(scored.split()), len(scored.encode("utf-8"))


def as_released_row(model_dir, question: str, reasoning: str) -> dict[str, float]:
    """`prepare_samples` + `compute_loglikelihoods` for one row: loglikelihood, words, bytes."""
    tokenizer, _ = _load(str(model_dir))
    clean, ranges = authors_extract(reasoning)
    full_text = question + clean
    words, n_bytes = authors_counts(reasoning)
    token_ids = tokenizer(full_text).input_ids  # vLLM tokenizes prompts with special tokens
    token_lls = prompt_logprobs(model_dir, token_ids)
    offsets = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)[
        "offset_mapping"
    ]
    if ranges is not None:
        adjusted = [(s + len(question), e + len(question)) for s, e in ranges]
        mask = [any(min(te, ce) > max(ts, cs) for cs, ce in adjusted) for ts, te in offsets]
    else:
        mask = [ts >= len(question) for ts, te in offsets]
    ll = sum(token_lls[i] for i in range(1, min(len(token_lls), len(mask))) if mask[i])
    return {"loglikelihood": ll, "words": words, "bytes": n_bytes}


def authors_aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    """The published `aggregate`, pooled over the rows."""
    ll = sum(r["loglikelihood"] for r in rows)
    words = sum(r["words"] for r in rows)
    n_bytes = sum(r["bytes"] for r in rows)
    return {
        "word_perplexity": math.exp(-ll / words),
        "byte_perplexity": math.exp(-ll / n_bytes),
        "bits_per_byte": -ll / (n_bytes * math.log(2)),
    }


def strict_reference(text: str) -> tuple[str, list[bool], list[int]]:
    """(clean text, per letter: inside a matched pair, raw positions of unmatched tags), with
    the rule that a text whose pairs mark no letter is scored whole."""
    tags, i = [], 0  # (raw position, length, "open"/"close")
    while i < len(text):
        if text.startswith(OPENING, i):
            tags.append((i, len(OPENING), "open"))
            i += len(OPENING)
        elif any(text.startswith(c, i) for c in CLOSINGS):
            tags.append((i, len(CLOSINGS[0]), "close"))
            i += len(CLOSINGS[0])
        else:
            i += 1
    stack, pairs, unmatched = [], [], []
    for position, _, kind in tags:
        if kind == "open":
            stack.append(position)
        elif stack:
            pairs.append((stack.pop(), position))
        else:
            unmatched.append(position)
    unmatched = sorted(unmatched + stack)
    skip = {p + k for p, length, _ in tags for k in range(length)}
    letters, inside = [], []
    for position, char in enumerate(text):
        if position in skip:
            continue
        letters.append(char)
        inside.append(any(a < position < b for a, b in pairs))
    if not any(inside):
        inside = [True] * len(letters)
    return "".join(letters), inside, unmatched


def consistent_row(model_dir, question: str, reasoning: str) -> dict[str, float]:
    """The consistent numbers of one row: the proxy reads question + strictly cleaned reasoning
    (special tokens as lm-eval adds them); each token that covers reasoning letters weighs the
    share of those letters inside a span; the bytes are those of the span letters."""
    tokenizer, _ = _load(str(model_dir))
    clean, inside, _ = strict_reference(reasoning)
    start = len(question)
    encoding = tokenizer(question + clean, return_offsets_mapping=True)
    ids, offsets = list(encoding.input_ids), encoding["offset_mapping"]
    token_lls = prompt_logprobs(model_dir, ids)
    weighted = weights = 0.0
    for i, (s, e) in enumerate(offsets):
        if e <= start:
            continue
        letters = inside[max(s, start) - start : e - start]
        weight = sum(letters) / len(letters)
        weighted -= weight * token_lls[i]
        weights += weight
    n_bytes = sum(len(c.encode("utf-8")) for c, k in zip(clean, inside, strict=True) if k)
    return {
        "span_nll_sum": weighted,
        "span_tokens": weights,
        "span_bytes": n_bytes,
        "span_nll": weighted / weights,
        "span_bpb": weighted / math.log(2) / n_bytes,
    }


def pooled_consistent(rows: list[dict[str, float]]) -> dict[str, float]:
    weighted = sum(r["span_nll_sum"] for r in rows)
    n_bytes = sum(r["span_bytes"] for r in rows)
    return {
        "span_bits_per_byte": weighted / n_bytes / math.log(2),
        "span_byte_perplexity": math.exp(weighted / n_bytes),
        "span_bpb": float(np.mean([r["span_bpb"] for r in rows])),
        "span_nll": float(np.mean([r["span_nll"] for r in rows])),
    }


def pieces_exact(model_dir, question: str, reasoning: str) -> bool:
    """Whether a string-level backend can score every token of both texts alone: the text up to
    each token's end tokenizes to the whole text's tokens up to it."""
    tokenizer, _ = _load(str(model_dir))
    for clean in (authors_extract(reasoning)[0], strict_reference(reasoning)[0]):
        encoding = tokenizer(question + clean, return_offsets_mapping=True)
        ids = list(encoding.input_ids)
        for i, (_, end) in enumerate(encoding["offset_mapping"]):
            if end and tokenizer((question + clean)[:end]).input_ids != ids[: i + 1]:
                return False
    return True
