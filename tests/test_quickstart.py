"""`rbridge quickstart qs --tiny` (the README's whole loop, offline, as CI runs it), and the
README's Python recipe run as written on its outputs.

The fitted points are checked against the files the loop wrote, read here with json and csv:
each proxy's `rbridge_nll` from its lm-eval results file, each target from the illustrative table.
The fit must pick the form with the best held-out R2 (4 points: leave-one-out), recomputed here
with numpy/scipy (`predictors/reference_fits.py`), and that R2 must be positive.
The Python recipe must reproduce the CLI's `rbridge_nll` for the same model and pack.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "predictors"))
from reference_fits import repeated_cv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
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
    assert "illustrative" in result.stderr
    return root


def proxy_scores(root: Path) -> dict[str, float]:
    scores = {}
    for path in (root / "proxies").glob("*/*/results_*.json"):
        scores[path.parts[-3]] = json.loads(path.read_text())["results"]["rbridge_gsm8k"][
            "rbridge_nll,none"
        ]
    return scores


def test_quickstart_runs_the_whole_loop(qs):
    fit = json.loads((qs / "fit" / "fit.json").read_text())
    assert "|---" in (qs / "fit" / "fit.md").read_text()
    assert (qs / "fit" / "fit.png").read_bytes()[:8] == PNG_MAGIC
    with open(qs / "illustrative_accuracies.csv", newline="") as fh:
        table = {row["recipe"]: float(row["illustrative_accuracy"]) for row in csv.DictReader(fh)}
    proxies = proxy_scores(qs)
    assert sorted(proxies) == sorted(table) and len(table) == 4
    assert len(set(proxies.values())) == 4  # the proxies really differ
    points = {p["key"]: p for p in fit["points"]}
    assert sorted(points) == sorted(table)
    for key, point in points.items():
        assert point["x"] == pytest.approx(proxies[key], rel=1e-12)
        assert point["y"] == pytest.approx(table[key], rel=1e-12)
        assert 0.0 <= point["lower"] <= point["upper"] <= 1.0
    x = np.array([p["x"] for p in fit["points"]])
    y = np.array([p["y"] for p in fit["points"]])
    held_out = {form: repeated_cv(form, x, y)["r2"] for form in fit["protocol"]["forms"]}
    for form, value in held_out.items():
        assert fit["protocol"]["forms"][form]["r2"] == pytest.approx(value, abs=1e-4), form
    assert fit["protocol"]["select"] == "cv_r2" and fit["protocol"]["leave_one_out"]
    assert held_out[fit["form"]] >= max(held_out.values()) - 2e-4
    assert fit["skill"]["cv_r2"] > 0 and not fit["skill"]["no_skill"]
    assert fit["turns_at"] is None
    pack = [json.loads(line) for line in (qs / "traces" / "gsm8k.jsonl").open()]
    assert len(pack) == 24 and all(r["frontier_tokens"] for r in pack)
    assert {r["meta"]["trace_author_model"] for r in pack} == {"gpt-4o-mini-2024-07-18"}
    assert (qs / "data" / "gsm8k" / "test.jsonl").read_text().count("\n") == 24
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
    assert printed == pytest.approx(proxy_scores(qs)["qs-d"], rel=1e-6)
