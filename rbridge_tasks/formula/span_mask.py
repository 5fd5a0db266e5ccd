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
    """Each proxy token's weight: the share of its reasoning letters inside a span.

    Parameters
    ----------
    letters : int
        Length of the reasoning (tags removed).
    inside : sequence of (start, end)
        The reasoning's ranges that weigh 1.
    token_spans : numpy.ndarray
        The tokens' [start, end) relative to the reasoning's first letter; letters outside
        [0, letters) (the question's) do not count, and a token with none weighs 0.
    """
    values = np.zeros(letters)
    for start, end in inside:
        values[start:end] = 1.0
    return span_means(values, token_spans)


def span_numbers(nll: np.ndarray, weights: np.ndarray, span_bytes: int) -> dict:
    """The consistent numbers of one document: per-document values, and `(numerator,
    denominator)` pairs for lm-eval's pooled aggregations (the negated weighted NLL sum over the
    span letters' bytes: `bits_per_byte` and `weighted_perplexity` negate it back)."""
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
    """The authors' per-row sums, as pairs for pooling and as bookkeeping values, so the
    subset's (and the authors' "overall") figures can be recomputed from the samples."""
    return {
        "as_released_bits_per_byte": (loglikelihood, n_bytes),
        "as_released_byte_perplexity": (loglikelihood, n_bytes),
        "as_released_word_perplexity": (loglikelihood, words),
        "as_released_loglikelihood": loglikelihood,
        "as_released_words": words,
        "as_released_bytes": n_bytes,
    }
