"""The rBridge metrics, registered with lm-eval so task YAMLs can name them.

Each is a per-document value computed in `RBridgeTask.process_results`; the registered function
passes the values through (as lm-eval's own `perplexity` does) and `mean` aggregates them, which
gives lm-eval's closed-form standard error.
"""

from __future__ import annotations

import lm_eval.api.metrics  # noqa: F401  (registers the `mean` aggregation used below)
from lm_eval.api.registry import register_metric

METRICS = ("rbridge_nll", "trace_nll", "trace_bpb", "rbridge_nll_sum", "rbridge_weight_sum")


def passthrough(items):
    return items


for _name in METRICS:
    register_metric(
        metric=_name, higher_is_better=False, output_type="loglikelihood", aggregation="mean"
    )(passthrough)
