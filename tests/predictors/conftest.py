"""Fixtures of the predictors tests: real lm-eval runs on tiny models, the Pythia results files
(`data_dir`, the offline hub settings and the tiny models come from `tests/conftest.py`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from predict_fixtures import DATA_DIR, build_runs

PYTHIA = DATA_DIR / "pythia_evals" / "pythia-v1"


@pytest.fixture(scope="session")
def lm_eval_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test session, shared by xdist workers through a file lock."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's directory, common to all workers
    root = base / "predictors_lm_eval_runs"
    with FileLock(str(root) + ".lock"):
        if not (root / "DONE").exists():
            shutil.rmtree(root, ignore_errors=True)
            build_runs(root)
            (root / "DONE").write_text("ok\n")
    return root


@pytest.fixture(scope="session")
def pythia() -> Path:
    return PYTHIA
