"""Run rBridge tasks in-process through real lm-eval (faster than a subprocess per test)."""

from __future__ import annotations

from pathlib import Path

from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from rbridge_tasks import tasks_path


def task_manager(**metadata) -> TaskManager:
    return TaskManager(
        include_path=str(tasks_path()),
        include_defaults=False,
        metadata={k: str(v) for k, v in metadata.items()},
    )


def evaluate(model_dir: Path, tasks: list[str], *, lm: HFLM | None = None, **metadata) -> dict:
    """lm-eval results (with samples) for `tasks`, the tokenizer named as lm-eval's CLI would."""
    lm = lm or HFLM(pretrained=str(model_dir), device="cpu", batch_size=32)
    return simple_evaluate(
        model=lm,
        tasks=tasks,
        bootstrap_iters=0,
        log_samples=True,
        task_manager=task_manager(pretrained=model_dir, **metadata),
    )
