"""One document's numbers: the rBridge score (method.md, "Score of one document") and the token
statistics, from per-token NLLs, token weights and (in document mode) the backend's response.

Both scoring modes end here with the same inputs, so every aggregation is defined once.
"""

from __future__ import annotations

import math

import numpy as np

from rbridge_tasks.document_mode import DocumentResponse

AGGREGATIONS = ("mean", "weighted_mean", "sum")


def rbridge_numbers(
    nll: np.ndarray, weights: np.ndarray, trace: str, aggregation: str = "mean"
) -> dict[str, float]:
    """The rBridge score and the quantities every variant is recomputed from.

    - `mean` (Algorithm 1): sum_t w_t l_t / T; tokens at weight 0 stay in the denominator.
    - `weighted_mean`: sum_t w_t l_t / sum_t w_t; when every weight is 0 it falls back to the
      plain mean of l_t, and `rbridge_zero_weight` flags the document.
    - `sum`: sum_t w_t l_t.
    """
    nll = np.asarray(nll, dtype=np.float64)
    weighted = float(np.dot(weights, nll))
    weight_sum = float(np.sum(weights))
    plain = float(nll.mean())
    headline = {
        "mean": weighted / len(nll),
        "weighted_mean": weighted_mean(nll, weights),
        "sum": weighted,
    }[aggregation]
    return {
        "rbridge_nll": headline,
        "trace_nll": plain,
        "trace_bpb": float(nll.sum()) / math.log(2) / len(trace.encode("utf-8")),
        "rbridge_nll_sum": weighted,
        "rbridge_weight_sum": weight_sum,
        "trace_tokens": len(nll),
        "rbridge_zero_weight": float(weight_sum == 0),
    }


def token_statistics(
    response: DocumentResponse, confidence: np.ndarray, last_tokens: int | None = None
) -> dict[str, float]:
    """Per-token statistics of one teacher-forced pass (Patel et al., arXiv 2605.18607).

    `confidence` is each scored token's frontier probability p (the mean over its letters, before
    MinMax). Each statistic is averaged uniformly, with weights p and with weights 1 - p. A
    statistic the backend cannot compute exactly (entropy from vLLM's top tokens) is left out;
    the statistic names and directions are in `metrics.TOKEN_STATISTICS`.
    """
    keep = slice(-last_tokens, None) if last_tokens else slice(None)
    logprobs = response.logprobs[keep]
    rank = response.rank[keep].astype(np.float64)
    top = response.top_logprobs[keep]
    p = np.asarray(confidence, dtype=np.float64)[keep]
    values = {
        "tok_ce": -logprobs,
        "tok_top1": (rank <= 1).astype(np.float64),
        "tok_top2": (rank <= 2).astype(np.float64),
        "tok_top3": (rank <= 3).astype(np.float64),
        "tok_top5": (rank <= 5).astype(np.float64),
        "tok_entropy": response.entropy[keep] / math.log(response.vocab_size),
        "tok_rank": rank,
        "tok_rr": 1.0 / rank,
        "tok_margin": np.maximum(top[:, 0] - logprobs, 0.0),
        "tok_wrong_conf": np.exp(np.where(rank == 1, top[:, 1], top[:, 0])),
    }
    out: dict[str, float] = {}
    for name, per_token in values.items():
        if np.isnan(per_token).any():
            continue
        for suffix, weights in (("", None), ("_p", p), ("_1mp", 1.0 - p)):
            out[name + suffix] = weighted_mean(per_token, weights)
    return out


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    """The weighted mean; uniform without weights or when every weight is 0."""
    if weights is None or not weights.sum() > 0:
        return float(values.mean())
    return float(np.dot(weights, values) / weights.sum())
