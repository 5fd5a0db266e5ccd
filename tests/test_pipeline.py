"""Scoring and prediction together: rBridge scores of several proxies, saved by lm-eval as
results files, fitted against large-model accuracies by `rbridge predict fit`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import task_manager
from lm_eval import simple_evaluate
from lm_eval.loggers import EvaluationTracker
from lm_eval.models.huggingface import HFLM
from tiny_models import build_tiny_lm
from trace_fixtures import real_texts, record, write_jsonl

# Large-model GSM8K accuracies of the four recipes: a table from elsewhere, as users have them.
TARGETS = {"A": 0.31, "B": 0.42, "C": 0.38, "D": 0.55}


def test_rbridge_scores_of_four_proxies_fit_large_model_accuracy(
    tmp_path, frontier_dir, gpt2_dir, llama_dir, data_dir
):
    traces = write_jsonl(
        tmp_path / "gsm8k.jsonl",
        [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 2)],
    )
    proxies = {
        "A": gpt2_dir,
        "B": llama_dir,
        "C": frontier_dir,
        "D": build_tiny_lm(tmp_path / "d", family="gpt2", seed=3),
    }
    results_dir = tmp_path / "results"
    scores = {}
    for recipe, model_dir in proxies.items():
        tracker = EvaluationTracker(output_path=str(results_dir / recipe))
        out = simple_evaluate(
            model=HFLM(pretrained=str(model_dir), device="cpu", batch_size=32),
            model_args=f"pretrained={model_dir}",
            tasks=["rbridge_gsm8k"],
            task_manager=task_manager(
                pretrained=model_dir, traces=traces, data_dir=data_dir, recipe=recipe
            ),
            evaluation_tracker=tracker,
            bootstrap_iters=0,
        )
        out.pop("samples")
        tracker.save_results_aggregated(results=out, samples=None)
        scores[recipe] = out["results"]["rbridge_gsm8k"]["rbridge_nll,none"]
    table = tmp_path / "targets.csv"
    table.write_text(
        "model,recipe,acc\n" + "".join(f"big-{r},{r},{a}\n" for r, a in TARGETS.items())
    )
    rbridge = [sys.executable, "-m", "rbridge_tasks.cli", "predict"]
    subprocess.run(
        [
            *rbridge,
            "import-table",
            str(table),
            "--model-column",
            "model",
            "--metric",
            "acc=gsm8k_large:acc:higher",
            "--meta",
            "recipe=recipe",
            "--out-dir",
            str(results_dir / "targets"),
        ],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [
            *rbridge,
            "fit",
            "--results",
            str(results_dir),
            "--proxy-task",
            "rbridge_gsm8k",
            "--proxy-metric",
            "rbridge_nll",
            "--target-task",
            "gsm8k_large",
            "--target-metric",
            "acc",
            "--join-on",
            "recipe",
            "--form",
            "linear",
            "--folds",
            "2",
            "--json",
            "--quiet",
            "--no-plot",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    fit = json.loads(done.stdout)
    x = np.array([scores[r] for r in sorted(TARGETS)])
    y = np.array([TARGETS[r] for r in sorted(TARGETS)])
    slope, intercept = np.polyfit(x, y, 1)
    assert fit["params"]["slope"] == pytest.approx(slope, rel=1e-9)
    assert fit["params"]["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert sorted((p["key"], p["x"]) for p in fit["points"]) == sorted(
        zip(sorted(TARGETS), x, strict=True)
    )
