"""Task-alignment weights: frontier confidences spread onto letters, then onto proxy tokens.

method.md, "Weights" (Algorithm 1 of arXiv 2509.21013v4, the default): every letter (Unicode code
point) of the trace takes the raw probability `exp(lp_j)` of the frontier token that produced it;
a proxy token's raw weight is the mean over its letters; MinMax then maps the proxy-token weights
of one trace (or of a whole benchmark) onto [0, 1]. `minmax_on=frontier_tokens` instead
normalises the frontier probabilities before the letter mapping (this project's 0.1 behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MINMAX_SCOPES = ("trace", "benchmark")
MINMAX_TARGETS = ("proxy_tokens", "frontier_tokens")


def confidences(logprobs: Sequence[float]) -> np.ndarray:
    """Frontier probabilities c_j = exp(lp_j), in [0, 1]."""
    return np.exp(np.asarray(logprobs, dtype=np.float64))


def minmax(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """MinMax-normalise into [0, 1]; a constant input (no spread) gives all ones.

    `low`/`high` default to the input's own range; pass a benchmark's range for the
    `benchmark` scope.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    if not high > low:
        return np.ones_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def letter_values(token_lengths: Sequence[int], token_values: Sequence[float]) -> np.ndarray:
    """One value per letter of the concatenated token texts: that of the token producing it."""
    return np.repeat(np.asarray(token_values, dtype=np.float64), np.asarray(token_lengths, int))


def span_means(letters: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean letter value over each [start, end) span, clipped to the letters; empty spans get 0.

    A float mean of equal values can land one bit off them (0.1 three times sums to
    0.30000000000000004), and MinMax would stretch that bit into weights 0 and 1 on a trace
    whose letters all have the same probability. So each mean is kept within its letters' own
    [min, max]: spans of equal letters give exactly that value, and equal means MinMax to ones.
    """
    letters = np.asarray(letters, dtype=np.float64)
    bounds = np.clip(np.asarray(spans, dtype=np.int64).reshape(-1, 2), 0, len(letters))
    out = np.zeros(len(bounds))
    inside = bounds[:, 1] > bounds[:, 0]
    if inside.any():
        # reduceat over the interleaved (start, end) pairs reduces letters[start:end] at the
        # even positions; the appended 0 lets an end equal the number of letters
        padded = np.append(letters, 0.0)
        cuts = bounds[inside].ravel()
        counts = bounds[inside, 1] - bounds[inside, 0]
        means = np.add.reduceat(padded, cuts)[::2] / counts
        low = np.minimum.reduceat(padded, cuts)[::2]
        high = np.maximum.reduceat(padded, cuts)[::2]
        out[inside] = np.minimum(np.maximum(means, low), high)
    return out


def proxy_token_weights(
    token_lengths: Sequence[int],
    logprobs: Sequence[float],
    spans: Sequence[tuple[int, int]],
    *,
    minmax_on: str = "proxy_tokens",
    scale: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(w_t, v_t) for proxy tokens covering `spans` of the trace (character offsets in it).

    `v_t` is the raw frontier confidence of the token (mean letter probability, the `p` of the
    token statistics); `w_t` its rBridge weight. `scale` is the benchmark's (min, max) for
    `minmax_scope=benchmark`, over the values MinMax applies to; None means this trace's own.
    """
    low, high = scale if scale is not None else (None, None)
    probs = confidences(logprobs)
    raw = span_means(letter_values(token_lengths, probs), spans)
    if minmax_on == "proxy_tokens":
        return minmax(raw, low, high), raw
    normalised = minmax(probs, low, high)
    return span_means(letter_values(token_lengths, normalised), spans), raw
