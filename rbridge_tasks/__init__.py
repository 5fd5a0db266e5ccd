"""rBridge for lm-evaluation-harness: score small proxy models on frontier reasoning traces.

The package by role (each subpackage's docstring says what it holds and what it may import):
`core`, `questions`, `records`, `formula`, `backends`, `harness`, `traces`; `cli`, `commands`
and `quickstart` on top. `evaluate` runs our tasks from Python; `tasks_path` is the folder of
their YAMLs.
"""

from rbridge_tasks.core.resources import tasks_path

__version__ = "0.1.0"


def _one_line_errors_under_lm_eval() -> None:
    from rbridge_tasks.harness import one_line_errors

    if one_line_errors.under_lm_eval_cli():
        one_line_errors.install()


_one_line_errors_under_lm_eval()

from rbridge_tasks.harness.api import evaluate  # noqa: E402  (the hook is installed first)

__all__ = ["evaluate", "tasks_path"]
