"""rBridge for lm-evaluation-harness: score small proxy models on frontier reasoning traces."""

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"


def tasks_path() -> Path:
    """Directory holding the task YAMLs, for `lm_eval --include_path`.

    The YAMLs live in the repository's top-level `task_configs/` and are installed as the
    `rbridge_tasks.task_configs` package, so editable and wheel installs resolve alike.
    """
    return Path(str(resources.files("rbridge_tasks.task_configs")))


def _one_line_errors_under_lm_eval() -> None:
    from rbridge_tasks import lm_eval_errors

    if lm_eval_errors.under_lm_eval_cli():
        lm_eval_errors.install()


_one_line_errors_under_lm_eval()

from rbridge_tasks.api import evaluate  # noqa: E402  (needs tasks_path above)

__all__ = ["evaluate", "tasks_path"]
