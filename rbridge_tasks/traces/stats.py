"""`rbridge traces stats`: what a trace pack holds, per benchmark.

Counts, models, answer coverage and accuracy, trace lengths (characters, frontier tokens) and the
frontier confidences `c = exp(logprob)` the weights are made from: their mean and median, the
share of near-certain tokens, and how many traces have one confidence throughout (MinMax gives
those uniform weights, see `method.md`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rbridge_tasks.records.schema import TraceRecord

CERTAIN = 0.9  # a token at least this probable counts as near-certain ("share_certain")


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """min, median, mean and max; None for no values, so JSON shows absence, not zeros."""
    if not values:
        return None
    return {
        "min": min(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "max": max(values),
    }


def summarise(records: Iterable[TraceRecord]) -> dict[str, Any]:
    """Statistics of one group of records (JSON-ready)."""
    records = list(records)
    judged = [r for r in records if r.correct is not None]
    with_tokens = [r for r in records if r.has_tokens]
    probabilities = [math.exp(lp) for r in with_tokens for lp in r.token_logprobs]
    logprobs = [lp for r in with_tokens for lp in r.token_logprobs]
    return {
        "records": len(records),
        "frontier_models": dict(Counter(r.frontier_model for r in records)),
        "trace_authors": dict(
            Counter(r.meta.get("trace_author_model", r.frontier_model) for r in records)
        ),
        "with_tokens": len(with_tokens),
        "with_answer": sum(r.answer is not None for r in records),
        "with_correct": len(judged),
        "accuracy": sum(bool(r.correct) for r in judged) / len(judged) if judged else None,
        "trace_chars": distribution([len(r.trace) for r in records]),
        "tokens_per_trace": distribution([len(r.token_texts) for r in with_tokens]),
        "confidence": None
        if not probabilities
        else {
            "tokens": len(probabilities),
            "mean": statistics.fmean(probabilities),
            "median": statistics.median(probabilities),
            "share_certain": sum(p >= CERTAIN for p in probabilities) / len(probabilities),
            "mean_logprob": statistics.fmean(logprobs),
            "min_logprob": min(logprobs),
        },
        "empty_text_tokens": sum(t == "" for r in with_tokens for t in r.token_texts),
        "constant_confidence_traces": sum(
            min(r.token_logprobs) == max(r.token_logprobs) for r in with_tokens
        ),
    }


def summarise_by_benchmark(records: Iterable[TraceRecord]) -> dict[str, dict[str, Any]]:
    """`summarise` of each benchmark's records, by benchmark name (one file may mix them)."""
    groups: dict[str, list[TraceRecord]] = {}
    for record in records:
        groups.setdefault(record.benchmark, []).append(record)
    return {benchmark: summarise(group) for benchmark, group in sorted(groups.items())}


def format_summary(summary: dict[str, Any], indent: str = "  ") -> str:
    """Readable lines of one `summarise` result."""
    lines = [
        f"{indent}records: {summary['records']} (with frontier tokens: "
        f"{summary['with_tokens']}, with answer: {summary['with_answer']}, judged: "
        f"{summary['with_correct']})"
    ]
    if summary["accuracy"] is not None:
        lines.append(f"{indent}accuracy of judged answers: {summary['accuracy']:.4f}")
    lines.append(f"{indent}frontier models: {_counts(summary['frontier_models'])}")
    lines.append(f"{indent}trace authors: {_counts(summary['trace_authors'])}")
    for key, label in (
        ("trace_chars", "trace characters"),
        ("tokens_per_trace", "frontier tokens per trace"),
    ):
        if summary[key] is not None:
            lines.append(f"{indent}{label}: {_dist(summary[key])}")
    confidence = summary["confidence"]
    if confidence is not None:
        lines.append(
            f"{indent}confidence exp(logprob): mean {confidence['mean']:.4f}, median "
            f"{confidence['median']:.4f}, >= {CERTAIN}: {confidence['share_certain']:.2%}; "
            f"mean logprob {confidence['mean_logprob']:.4f}, min {confidence['min_logprob']:.3f}"
        )
        lines.append(
            f"{indent}empty-text tokens (partial characters): "
            f"{summary['empty_text_tokens']}; traces with constant confidence: "
            f"{summary['constant_confidence_traces']}"
        )
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _dist(d: dict[str, float]) -> str:
    return f"min {d['min']:g}, median {d['median']:g}, mean {d['mean']:.1f}, max {d['max']:g}"
