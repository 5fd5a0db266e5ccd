"""Files shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def tasks_path() -> Path:
    """Directory holding the task YAMLs, for `lm_eval --include_path`.

    The YAMLs live in the repository's top-level `task_configs/` and are installed as the
    `rbridge_tasks.task_configs` package, so editable and wheel installs resolve alike.
    """
    return Path(str(resources.files("rbridge_tasks.task_configs")))
