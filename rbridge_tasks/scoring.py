"""One document's rBridge numbers from its request plan, token weights and lm-eval's answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rbridge_tasks.request_plan import RequestPlan
from rbridge_tasks.weights import span_means


@dataclass(frozen=True)
class DocumentScore:
    rbridge_nll: float  # sum_t w_t l_t / sum_t w_t
    trace_nll: float  # unweighted mean NLL per proxy token
    trace_bpb: float  # unweighted bits per UTF-8 byte of the scored text
    weighted_sum: float  # sum_t w_t l_t, the paper's "weighted summation"
    weight_sum: float  # sum_t w_t


def token_weights(plan: RequestPlan, char_weights: np.ndarray) -> np.ndarray:
    """Each scored proxy token's mean trace-character weight over its offsets.

    Characters outside the trace (the delimiter, whitespace lm-eval moves onto the trace) carry
    no weight; a token with no trace characters gets 0.
    """
    offset = plan.trace_char_start
    return span_means(char_weights, [(s - offset, e - offset) for s, e in plan.token_spans])


def approximated_units(plan: RequestPlan, weights: np.ndarray) -> list[int]:
    """Units of several tokens with unequal weights: their weighted NLL is not exact."""
    return [
        i
        for i, (start, size) in enumerate(zip(plan.unit_starts, plan.unit_sizes, strict=True))
        if size > 1 and np.ptp(weights[start : start + size]) > 0
    ]


def score_document(
    plan: RequestPlan, weights: np.ndarray, loglikelihoods: list[float]
) -> DocumentScore:
    """Within a unit of several tokens, each token is given the unit's mean NLL.

    That is exact when the unit's tokens share one weight (byte pieces of one character); the
    task reports the units where it is not (`approximated_units`).
    """
    nll = -plan.unit_loglikelihoods(loglikelihoods)
    sizes = plan.unit_sizes
    weighted_sum = float(np.dot(nll / sizes, np.add.reduceat(weights, plan.unit_starts)))
    total = float(nll.sum())
    return DocumentScore(
        rbridge_nll=weighted_sum / float(weights.sum()),
        trace_nll=total / int(sizes.sum()),
        trace_bpb=total / math.log(2) / len(plan.scored_text.encode("utf-8")),
        weighted_sum=weighted_sum,
        weight_sum=float(weights.sum()),
    )
