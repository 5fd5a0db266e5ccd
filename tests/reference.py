"""An independent computation of every per-document number, sharing no code with the package.

Written from method.md and the README's definitions: one transformers forward pass over
context + trace (float64 log-softmax of the full logits), the scored tokens are those whose
offsets end after the trace's first character, Algorithm 1's weights (letter probabilities,
per-token letter means, MinMax over the trace's proxy tokens), and the token statistics from the
full distribution.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


@cache
def _load(model_dir: str):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    return tokenizer, model


def token_pass(model_dir: Path, context: str, trace: str, max_length: int | None = None):
    """(nll, spans relative to the trace, full log-probabilities, pieces groups) of the scored
    tokens. With `max_length`, the context is cut from the left to leave `max_length` inputs."""
    tokenizer, model = _load(str(model_dir))
    text = context + trace
    enc = tokenizer(text, return_offsets_mapping=True)
    ids = list(enc.input_ids)
    scored = [i for i, (_, end) in enumerate(enc.offset_mapping) if end > len(context)]
    first, last = scored[0], scored[-1]
    ids = ids[: last + 1]
    cut = max(0, len(ids) - (max_length + 1)) if max_length else 0
    window = ids[cut:]
    with torch.no_grad():
        logits = model(torch.tensor([window[:-1]])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1).numpy()
    # ranks are discrete: take them from float32 log-probabilities, as vLLM and hf-rbridge do
    # (entries equal after float32 rounding are ties, and a tie counts against the trace token)
    logprobs32 = torch.log_softmax(logits.float(), dim=-1).numpy()
    rows = [i - cut - 1 for i in range(first, last + 1)]
    targets = ids[first : last + 1]
    nll = np.array([-logprobs[r, t] for r, t in zip(rows, targets, strict=True)])
    spans = [(s - len(context), e - len(context)) for s, e in enc.offset_mapping[first : last + 1]]
    full = logprobs[rows], logprobs32[rows]
    # where a string-level backend can cut: the text up to a token's end re-tokenizes to the
    # whole text's token prefix (pieces mode shares a group's NLL among its tokens)
    group_ends = [
        k + 1
        for k, i in enumerate(range(first, last + 1))
        if tokenizer(text[: enc.offset_mapping[i][1]]).input_ids == list(enc.input_ids[: i + 1])
    ]
    return nll, spans, full, targets, group_ends, cut


def letter_probabilities(frontier_tokens: list[dict]) -> list[float]:
    out = []
    for token in frontier_tokens:
        out += [math.exp(token["logprob"])] * len(token["text"])
    return out


def token_letter_means(letters: list[float], spans) -> np.ndarray:
    """Exact means (rational arithmetic, rounded once), so equal letters give equal means."""
    values = []
    for start, end in spans:
        inside = letters[max(start, 0) : max(min(end, len(letters)), 0)]
        values.append(float(sum(map(Fraction, inside)) / len(inside)) if inside else 0.0)
    return np.array(values)


def scale_to_unit(values: np.ndarray, low=None, high=None) -> np.ndarray:
    low = values.min() if low is None else low
    high = values.max() if high is None else high
    if high <= low:
        return np.ones_like(values)
    return np.clip((values - low) / (high - low), 0, 1)


def weights(frontier_tokens, spans, minmax_on="proxy_tokens", scale=None):
    letters = letter_probabilities(frontier_tokens)
    raw = token_letter_means(letters, spans)
    if minmax_on == "proxy_tokens":
        return (scale_to_unit(raw, *scale) if scale else scale_to_unit(raw)), raw
    probs = np.array([math.exp(t["logprob"]) for t in frontier_tokens])
    normalised = scale_to_unit(probs, *scale) if scale else scale_to_unit(probs)
    spread = []
    for token, w in zip(frontier_tokens, normalised, strict=True):
        spread += [w] * len(token["text"])
    return token_letter_means(spread, spans), raw


def statistics(full, targets: list[int], nll: np.ndarray) -> dict[str, np.ndarray]:
    full, full32 = full
    order = np.sort(full, axis=1)[:, ::-1]
    own = np.array([full[r, t] for r, t in enumerate(targets)])
    own32 = np.array([full32[r, t] for r, t in enumerate(targets)])
    rank = np.array([int((full32[r] >= own32[r]).sum()) for r in range(len(targets))])
    probs = np.exp(full)
    entropy = -(probs * full).sum(axis=1) / math.log(full.shape[1])
    others = [np.exp(np.delete(full[r], t).max()) for r, t in enumerate(targets)]
    # a rank decided by float32 near-ties: margin and wrong-token confidence follow that rank
    margin = np.where(rank == 1, 0.0, order[:, 0] - own)
    return {
        "tok_ce": nll,
        "tok_top1": (rank <= 1) * 1.0,
        "tok_top2": (rank <= 2) * 1.0,
        "tok_top3": (rank <= 3) * 1.0,
        "tok_top5": (rank <= 5) * 1.0,
        "tok_entropy": entropy,
        "tok_rank": rank * 1.0,
        "tok_rr": 1.0 / rank,
        "tok_margin": margin,
        "tok_wrong_conf": np.array(others),
    }


def document(
    model_dir: Path,
    context: str,
    trace_record: dict,
    *,
    minmax_on: str = "proxy_tokens",
    scale: tuple[float, float] | None = None,
    aggregation: str = "mean",
    last_tokens: int | None = None,
    pieces: bool = False,
    max_length: int | None = None,
) -> dict[str, float]:
    """Every metric of one document; `pieces=True` gives what pieces mode can compute (each
    token of a group shares the group's mean NLL), and leaves out the token statistics."""
    trace = trace_record["trace"]
    nll, spans, full, targets, group_ends, cut = token_pass(model_dir, context, trace, max_length)
    w, p = weights(trace_record["frontier_tokens"], spans, minmax_on, scale)
    shared = nll.copy()
    if pieces:
        for lo, hi in zip([0, *group_ends[:-1]], group_ends, strict=True):
            shared[lo:hi] = nll[lo:hi].mean()
    T = len(nll)
    wl = float((w * shared).sum())
    out = {
        "rbridge_nll": {
            "mean": wl / T,
            "weighted_mean": wl / w.sum() if w.sum() > 0 else float(shared.mean()),
            "sum": wl,
        }[aggregation],
        "trace_nll": float(shared.mean()),
        "trace_bpb": float(shared.sum() / math.log(2) / len(trace.encode("utf-8"))),
        "rbridge_nll_sum": wl,
        "rbridge_weight_sum": float(w.sum()),
        "trace_tokens": T,
        "rbridge_zero_weight": float(w.sum() == 0),
    }
    if pieces:
        return out
    out["context_truncated_tokens"] = cut
    keep = slice(-last_tokens, None) if last_tokens else slice(None)
    for name, per_token in statistics(full, targets, nll).items():
        values, pk = per_token[keep], p[keep]
        out[name] = float(values.mean())
        for suffix, wk in (("_p", pk), ("_1mp", 1 - pk)):
            out[name + suffix] = (
                float((wk * values).sum() / wk.sum()) if wk.sum() > 0 else out[name]
            )
    return out


def benchmark_scale(model_dir, contexts_and_records, minmax_on="proxy_tokens"):
    """min and max over the whole benchmark of what MinMax maps."""
    values = []
    for context, rec in contexts_and_records:
        if minmax_on == "frontier_tokens":
            values += [math.exp(t["logprob"]) for t in rec["frontier_tokens"]]
        else:
            tokenizer, _ = _load(str(model_dir))
            enc = tokenizer(context + rec["trace"], return_offsets_mapping=True)
            spans = [
                (s - len(context), e - len(context))
                for s, e in enc.offset_mapping
                if e > len(context)
            ]
            values += list(token_letter_means(letter_probabilities(rec["frontier_tokens"]), spans))
    return min(values), max(values)
