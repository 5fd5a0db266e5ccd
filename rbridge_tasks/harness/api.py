"""The Python entry point: `lm_eval.simple_evaluate` with the rBridge tasks and models included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rbridge_tasks.core.resources import tasks_path


def evaluate(
    model: Any,
    tasks: list[str],
    *,
    model_args: str | dict[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **simple_evaluate_kwargs: Any,
) -> dict[str, Any]:
    """Run rBridge tasks (and any lm-eval task) from Python.

    Parameters
    ----------
    model : str or lm_eval.api.model.LM
        A registered name (`"hf-rbridge"`, `"vllm-rbridge"`, `"hf"`, ...) or a built LM object;
        every model answers the tasks' document requests, ours in one pass.
    tasks : list of str
        Task or group names, e.g. `["rbridge"]`.
    model_args : str or dict, optional
        As lm-eval takes them (`"pretrained=DIR,dtype=float32"` or a dict).
    metadata : mapping, optional
        The tasks' options (README, "Options"). With a built LM object and
        `minmax_scope=benchmark`, name its tokenizer (`{"tokenizer": ...}`) unless it has a
        `name_or_path`.
    **simple_evaluate_kwargs
        Passed to `lm_eval.simple_evaluate` (the device defaults to CUDA when there is one).

    Returns
    -------
    dict
        lm-eval's results, with `samples` unless `log_samples=False`.

    Raises
    ------
    rbridge_tasks.core.errors.RBridgeError
        Bad options or inputs, in one line.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import simple_parse_args_string

    from rbridge_tasks.harness.registration import register_models

    register_models()
    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else model_args
    meta = {**(args or {}), **(metadata or {})}
    if not isinstance(model, str) and "pretrained" not in meta and "tokenizer" not in meta:
        name = getattr(getattr(model, "tokenizer", None), "name_or_path", None)
        if name:
            meta["tokenizer"] = name
    if isinstance(model, str) and "device" not in simple_evaluate_kwargs:
        import torch

        simple_evaluate_kwargs["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata=meta)
    return lm_eval.simple_evaluate(
        model=model, model_args=args, tasks=tasks, task_manager=manager, **simple_evaluate_kwargs
    )
