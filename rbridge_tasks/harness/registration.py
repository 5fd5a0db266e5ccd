"""What lm-eval must know by name before it builds our tasks or our models.

- Metrics: the task YAMLs list them (`task_configs/_default_template_yaml`,
  `_baselines_template_yaml` and `_mask_template_yaml`: names, directions and aggregations, the
  one table of them). lm-eval looks every listed name up in its metric registry when it builds a
  task, so each task registers its own list first: a pass-through per-document value, averaged
  by lm-eval's `mean` (with its closed-form standard error, as lm-eval's own `perplexity`) or
  pooled by the aggregation the YAML names (`weighted_perplexity`, `bits_per_byte`: lm-eval's
  own, over per-document `(numerator, denominator)` pairs).
- Models: `hf-rbridge` and `vllm-rbridge` are registered as "module:Class" placeholders
  (`backends.models.MODELS`), so that naming `vllm-rbridge` costs nothing, and needs no vLLM,
  until it is used.
- The request type: lm-eval calls `getattr(lm, "rbridge_document")`, so every lm-eval model
  gets `backends.pieces.answer_with_loglikelihood` as its answer (on lm-eval's base class `LM`);
  `hf-rbridge` and `vllm-rbridge` override it with their one-pass answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lm_eval.api.metrics
import lm_eval.models  # noqa: F401  (get_model loads lm-eval's own models only into an empty registry)
from lm_eval.api.model import LM
from lm_eval.api.registry import metric_registry, model_registry, register_metric

from rbridge_tasks.backends.models import MODELS
from rbridge_tasks.backends.pieces import answer_with_loglikelihood
from rbridge_tasks.backends.response import REQUEST_TYPE
from rbridge_tasks.core.resources import tasks_path


def template_config(name: str) -> dict[str, Any]:
    """The settings of a template YAML (`_default_template_yaml`, `_baselines_template_yaml`),
    without its `class`: the defaults of a task YAML of the user's own, which names our class
    and its metadata but cannot `include` a file inside the installed package."""
    import yaml

    class Loader(yaml.SafeLoader):  # the `class: !function ...` line is the YAML's own business
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    config = yaml.load((tasks_path() / name).read_text(encoding="utf-8"), Loader)
    if "include" in config:
        config = {**template_config(config.pop("include")), **config}
    config.pop("class", None)
    return config


def passthrough(items):
    return items


def register_metrics(metric_list: Iterable[Mapping[str, Any]]) -> None:
    for entry in metric_list:
        name = entry["metric"]
        if name not in metric_registry:
            register_metric(
                metric=name,
                higher_is_better=entry.get("higher_is_better"),
                output_type="loglikelihood",
                aggregation=entry.get("aggregation", "mean"),
            )(passthrough)


def register_models() -> None:
    for name, target in MODELS.items():
        if name not in model_registry:
            model_registry.register(name, target=target)


def install_document_answer() -> None:
    if not hasattr(LM, REQUEST_TYPE):
        setattr(LM, REQUEST_TYPE, answer_with_loglikelihood)
