"""One document's numbers from its per-token values: the rBridge score (method.md, "Score of one
document"), the unweighted trace NLL and bits per byte, and the token statistics. Every backend's
answer ends here, so every aggregation is defined once; the names are those the task YAMLs list.
"""

from __future__ import annotations

import math

import numpy as np

AGGREGATIONS = ("mean", "weighted_mean", "sum")


def rbridge_numbers(
    nll: np.ndarray, weights: np.ndarray, trace: str, aggregation: str = "mean"
) -> dict[str, float]:
    """The rBridge score and the quantities every variant is recomputed from.

    - `mean` (Algorithm 1): sum_t w_t l_t / T; tokens at weight 0 stay in the denominator.
    - `weighted_mean`: sum_t w_t l_t / sum_t w_t; when every weight is 0 it falls back to the
      plain mean of l_t, and `rbridge_zero_weight` flags the document.
    - `sum`: sum_t w_t l_t.

    Parameters
    ----------
    nll, weights
        Per scored proxy token: l_t = -log p(token) and its weight w_t, the same length.
    trace
        The scored text, whose UTF-8 bytes are the denominator of `trace_bpb`.

    Returns
    -------
    dict
        `rbridge_nll` (the score under `aggregation`), `trace_nll`, `trace_bpb`,
        `rbridge_nll_sum`, `rbridge_weight_sum`, `trace_tokens` and `rbridge_zero_weight`.
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
    logprobs: np.ndarray,
    rank: np.ndarray,
    top_logprobs: np.ndarray,
    entropy: np.ndarray | None,
    vocab_size: int | None,
    confidence: np.ndarray,
    last_tokens: int | None = None,
) -> dict[str, float]:
    """Per-token statistics of one teacher-forced pass (Patel et al., arXiv 2605.18607).

    Parameters
    ----------
    logprobs, rank, top_logprobs, entropy, vocab_size
        Per scored token, as a backend reports them (`backends.response.DocumentResponse`);
        `entropy` None (a backend that sees only the top tokens) leaves `tok_entropy*` out.
    confidence
        Each token's frontier probability p (the mean over its letters, before MinMax).
    last_tokens
        Restrict the statistics to the last N tokens.

    Returns
    -------
    dict
        Each statistic averaged uniformly, with weights p (`_p`) and with weights 1 - p
        (`_1mp`); a statistic with a NaN among its tokens is left out.
    """
    keep = slice(-last_tokens, None) if last_tokens else slice(None)
    logprobs = logprobs[keep]
    rank = rank[keep].astype(np.float64)
    top = top_logprobs[keep]
    p = np.asarray(confidence, dtype=np.float64)[keep]
    values = {
        "tok_ce": -logprobs,
        "tok_top1": (rank <= 1).astype(np.float64),
        "tok_top2": (rank <= 2).astype(np.float64),
        "tok_top3": (rank <= 3).astype(np.float64),
        "tok_top5": (rank <= 5).astype(np.float64),
        "tok_rank": rank,
        "tok_rr": 1.0 / rank,
        "tok_margin": np.maximum(top[:, 0] - logprobs, 0.0),
        "tok_wrong_conf": np.exp(np.where(rank == 1, top[:, 1], top[:, 0])),
    }
    if entropy is not None and vocab_size:
        values["tok_entropy"] = entropy[keep] / math.log(vocab_size)
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
