"""Every per-document number the rBridge tasks report, with its direction, in one table.

The task's `metric_list` is built from `METRICS` (so the YAMLs stay short and the names have one
source); each metric is registered with lm-eval, passes the per-document values through (as
lm-eval's own `perplexity` does) and `mean` aggregates them, which gives lm-eval's closed-form
standard error. `higher_is_better` is None for bookkeeping values that are not proxy scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import lm_eval.api.metrics  # noqa: F401  (registers the `mean` aggregation used below)
from lm_eval.api.registry import register_metric


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool | None
    meaning: str


# The token statistics of Patel et al. (arXiv 2605.18607), over the scored trace tokens (the last
# `last_tokens` of them when set); each is also weighted by the frontier confidence p and by 1-p.
TOKEN_STATISTICS: dict[str, tuple[bool, str]] = {
    "tok_ce": (False, "cross-entropy (NLL, nats) of the trace token"),
    "tok_top1": (True, "1 if the trace token is the proxy's top-1 token"),
    "tok_top2": (True, "1 if the trace token is among the proxy's top 2"),
    "tok_top3": (True, "1 if the trace token is among the proxy's top 3"),
    "tok_top5": (True, "1 if the trace token is among the proxy's top 5"),
    "tok_entropy": (False, "entropy of the proxy's distribution / log(vocabulary size)"),
    "tok_rank": (False, "rank of the trace token (1 = top)"),
    "tok_rr": (True, "reciprocal rank of the trace token"),
    "tok_margin": (False, "top logprob minus the trace token's logprob (0 when it is the top)"),
    "tok_wrong_conf": (False, "highest probability the proxy gives to a token other than it"),
}
WEIGHTINGS = {"": "uniform", "_p": "weighted by p", "_1mp": "weighted by 1 - p"}

METRICS: tuple[Metric, ...] = (
    Metric("rbridge_nll", False, "the rBridge score (Algorithm 1 by default; see `aggregation`)"),
    Metric("trace_nll", False, "unweighted mean NLL per scored proxy token"),
    Metric("trace_bpb", False, "unweighted NLL in bits per UTF-8 byte of the trace"),
    Metric("rbridge_nll_sum", False, "sum_t w_t * nll_t"),
    Metric("rbridge_weight_sum", None, "sum_t w_t"),
    Metric("trace_tokens", None, "number of scored proxy tokens T"),
    Metric("rbridge_zero_weight", None, "1 if every weight of the document is 0"),
    Metric("context_truncated_tokens", None, "context tokens cut to fit the model"),
    *(
        Metric(f"{stat}{suffix}", hib, f"{meaning}, {weighting}")
        for stat, (hib, meaning) in TOKEN_STATISTICS.items()
        for suffix, weighting in WEIGHTINGS.items()
    ),
)
# The paper's baselines (`rbridge_baselines_<benchmark>`, see `baselines.py`).
BASELINE_METRICS: tuple[Metric, ...] = (
    Metric("gold_nll", False, "mean NLL per token of the benchmark's reference answer"),
    Metric("gold_bpb", False, "NLL of the reference answer in bits per UTF-8 byte"),
    Metric("scalingbench_nll", False, "mean NLL per token of the trace plus the answer line"),
    Metric("scalingbench_bpb", False, "NLL of the trace plus the answer line, bits per byte"),
    Metric("mpca", True, "the proxy's probability of the correct final answer"),
    Metric("mpca_nll", False, "-log of that probability"),
)


def metric_list(metrics: tuple[Metric, ...] = METRICS) -> list[dict]:
    """A task config's `metric_list`."""
    return [
        {"metric": m.name, "aggregation": "mean", "higher_is_better": m.higher_is_better}
        for m in metrics
    ]


def passthrough(items):
    return items


for _metric in METRICS + BASELINE_METRICS:
    register_metric(
        metric=_metric.name,
        higher_is_better=_metric.higher_is_better,
        output_type="loglikelihood",
        aggregation="mean",
    )(passthrough)
