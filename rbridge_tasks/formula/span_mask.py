"""The span-mask tasks' per-document numbers (README, "Span-mask tasks"), in two sets.

- Consistent: letters inside a span weigh 1 and others 0; a proxy token's weight is the mean over
  its letters (`weights.span_means`, the token level of the frontier weights), so a token half
  inside a span counts half its NLL. The denominator is the UTF-8 bytes of the letters that weigh
  1: numerator and denominator cover the same letters.
- `as_released`: the authors' summed log-likelihood and their word and byte counts, computed by
  the task (`harness.span_mask`) with the authors' token indexing; here only named.

The pooled values are `(numerator, denominator)` pairs that lm-eval's own pooled aggregations
(`weighted_perplexity`, `bits_per_byte`) sum over the subset's documents, as for its
`loglikelihood_rolling` tasks: `exp(-sum ll / sum count)` and `-sum ll / sum bytes / ln 2`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rbridge_tasks.formula.weights import span_means


def span_token_weights(
    letters: int, inside: Sequence[tuple[int, int]], token_spans: np.ndarray
) -> np.ndarray:
    """Each token's share of its letters inside the spans; `token_spans` are relative to the
    first letter, and a token's letters outside [0, letters) do not count (question text)."""
    values = np.zeros(letters)
    for start, end in inside:
        values[start:end] = 1.0
    return span_means(values, token_spans)


def span_numbers(nll: np.ndarray, weights: np.ndarray, span_bytes: int) -> dict:
    weighted = float(np.dot(weights, nll))
    tokens = float(weights.sum())
    return {
        "span_bpb": weighted / math.log(2) / span_bytes,
        "span_nll": weighted / tokens,
        "span_bits_per_byte": (-weighted, span_bytes),
        "span_byte_perplexity": (-weighted, span_bytes),
        "span_nll_sum": weighted,
        "span_tokens": tokens,
        "span_bytes": span_bytes,
    }


def released_numbers(loglikelihood: float, words: int, n_bytes: int) -> dict:
    return {
        "as_released_bits_per_byte": (loglikelihood, n_bytes),
        "as_released_byte_perplexity": (loglikelihood, n_bytes),
        "as_released_word_perplexity": (loglikelihood, words),
        "as_released_loglikelihood": loglikelihood,
        "as_released_words": words,
        "as_released_bytes": n_bytes,
    }
