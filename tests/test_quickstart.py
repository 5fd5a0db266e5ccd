"""`rbridge quickstart qs --tiny` (the README's whole loop, offline, as CI runs it), and the
README's Python recipe run as written on its outputs.

The quick start is the ladder study at a small size (`tests/test_ladder_study.py` checks the
study's files): here, that it wrote the comparison of every proxy metric against the targets'
accuracies read from the targets' lm-eval results files (at the tiny size the targets are all
at 0, so every fit is refused as constant and says so), that it refuses a used folder, and that
the Python recipe reproduces the CLI's `rbridge_nll` for the same model and pack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROXY = "sol60-proxy"  # the README's Python recipe scores this one
README = Path(__file__).resolve().parents[1] / "README.md"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def quickstart(root: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "quickstart", str(root), "--tiny"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def qs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quickstart") / "qs"  # the README's folder name
    result = quickstart(root, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "$ rbridge predict compare" in result.stderr
    return root


def results(root: Path, name: str) -> dict:
    (path,) = (root / "results" / name).glob("*/results_*.json")
    return json.loads(path.read_text())


def test_quickstart_compares_against_measured_accuracies(qs):
    compare = json.loads((qs / "compare" / "compare.json").read_text())
    targets = {b["target"]["task"] for b in compare["benchmarks"]}
    assert targets == {"study_arith"}
    accuracies = {
        results(qs, name)["results"]["study_arith"]["exact_match,strict-match"]
        for name in (p.name for p in (qs / "results").iterdir())
        if name.endswith("-target")
    }
    assert len(accuracies) == 1  # tiny targets: all 0, so every fit is refused, and says so
    assert any("rbridge_nll`: every form has an undefined r2" in s for s in compare["skipped"])
    assert "illustrative" not in (qs / "compare" / "compare.md").read_text()
    again = quickstart(qs, timeout=300)  # refuses to mix its outputs with an earlier run's
    assert again.returncode == 2 and "new or empty folder" in again.stderr


def test_readme_python_recipe_runs_as_written(qs):
    section = README.read_text(encoding="utf-8").split("## Set up")[1].split("\n## ")[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert "qs/" in code
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=qs.parent,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    printed = float(result.stdout.strip().splitlines()[-1])
    expected = results(qs, PROXY)["results"]["rbridge_gsm8k"]["rbridge_nll,none"]
    assert printed == pytest.approx(expected, rel=1e-6)
