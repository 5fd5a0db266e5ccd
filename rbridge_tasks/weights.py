"""Task-alignment weights: frontier confidences spread onto characters, then onto proxy tokens.

method.md, "Weights": c_j = exp(lp_j); MinMax over one trace (or a whole benchmark); every
character takes the normalised confidence of the frontier token that produced it; a proxy token's
weight is the mean over its characters. Characters are Unicode code points of the trace.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MINMAX_SCOPES = ("trace", "benchmark")


def confidences(logprobs: Sequence[float]) -> np.ndarray:
    """Frontier probabilities c_j = exp(lp_j), in [0, 1]."""
    return np.exp(np.asarray(logprobs, dtype=np.float64))


def minmax(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """MinMax-normalise into [0, 1]; a constant input (no spread) gives all ones.

    `low`/`high` default to the input's own range; pass a benchmark's range for the
    `benchmark` scope.
    """
    values = np.asarray(values, dtype=np.float64)
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    if not high > low:
        return np.ones_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def character_weights(token_texts: Sequence[str], token_weights: Sequence[float]) -> np.ndarray:
    """One weight per character of the concatenated token texts: that of the token producing it."""
    lengths = [len(text) for text in token_texts]
    return np.repeat(np.asarray(token_weights, dtype=np.float64), lengths)


def span_means(char_weights: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean character weight over each [start, end) span; a span with no characters gets 0.

    Each mean sums its own characters (not differences of a running sum, whose rounding can
    put a mean of ones a hair above 1).
    """
    out = np.zeros(len(spans))
    for i, (start, end) in enumerate(spans):
        start, end = max(start, 0), min(end, len(char_weights))
        if end > start:
            out[i] = char_weights[start:end].mean()
    return out
