"""The Python entry point: `lm_eval.simple_evaluate` with the rBridge tasks and scoring mode set.

`rbridge eval` and `evaluate` pick document mode for `hf-rbridge`/`vllm-rbridge` (one request
per trace) and leave stock backends in pieces mode; `--metadata scoring=...` overrides both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rbridge_tasks import tasks_path
from rbridge_tasks.errors import RBridgeError

DOCUMENT_MODELS = ("hf-rbridge", "vllm-rbridge")


def answers_documents(model: Any) -> bool:
    """Whether `model` (a registered name or an lm-eval LM object) answers document requests."""
    if isinstance(model, str):
        return model in DOCUMENT_MODELS
    from rbridge_tasks.document_mode import REQUEST_TYPE, _not_supported

    method = getattr(type(model), REQUEST_TYPE, None)
    return method is not None and method is not _not_supported


def with_scoring(model: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """`metadata` with `scoring` set for `model`, unless the user chose it."""
    out = dict(metadata or {})
    capable = answers_documents(model)
    out.setdefault("scoring", "document" if capable else "pieces")
    if out["scoring"] == "document" and not capable:
        raise RBridgeError(
            f"--metadata scoring=document needs a model that answers rBridge document requests; "
            f"{model if isinstance(model, str) else type(model).__name__} does not: use "
            "--model hf-rbridge (or vllm-rbridge), or scoring=pieces"
        )
    return out


def evaluate(
    model: Any,
    tasks: list[str],
    *,
    model_args: str | dict[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    **simple_evaluate_kwargs: Any,
) -> dict[str, Any]:
    """Run rBridge tasks from Python; `simple_evaluate`'s keyword arguments pass through.

    `model` is a name (`"hf-rbridge"`, `"hf"`, ...) or an lm-eval LM object. With a name the
    model args name the tokenizer; with an object whose tokenizer the tasks cannot see (pieces
    mode), pass `metadata={"tokenizer": ...}`. The device defaults to CUDA when there is one.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import simple_parse_args_string

    import rbridge_tasks.models  # noqa: F401  (registers hf-rbridge / vllm-rbridge)

    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else model_args
    meta = {**(args or {}), **with_scoring(model, metadata)}
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
