"""`rbridge study DIR --size tiny`: the ladder study's plumbing end to end (not its result).

Three recipes, a few training steps: every stage must leave its files, every target accuracy must
be the one lm-eval wrote (recomputed here from lm-eval's samples file with our own regex), the
proxies must be scored from the frontier's generated traces, and compare/rank must have read the
results files. A second run in the same folder resumes (nothing retrained or re-evaluated); one
with another seed is refused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rbridge_tasks.study.ladder import SIZES
from rbridge_tasks.study.problems import held_out_problems

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
ANSWER = re.compile(r"The answer is (-?[0-9]+)\.")


def study(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "study", str(root), "--size", "tiny", *extra],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study") / "ladder"
    result = study(root)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def results_file(root: Path, name: str) -> Path:
    (path,) = (root / "results" / name).glob("*/results_*.json")
    return path


def test_benchmark_is_gsm8k_shaped_and_held_out(run):
    size = SIZES["tiny"]
    rows = [json.loads(line) for line in (run / "data" / "gsm8k" / "test.jsonl").open()]
    problems = held_out_problems(0, size.test_questions)
    assert [r["question"] for r in rows] == [p.question for p in problems]
    for row, problem in zip(rows, problems, strict=True):
        assert row["answer"].endswith(f"\n#### {problem.answer}")
    trace = [json.loads(line) for line in (run / "traces" / "gsm8k.jsonl").open()]
    assert [r["question"] for r in trace] == [p.question for p in problems]  # incorrect kept
    assert all(r["frontier_tokens"] and r["frontier_model"] == "study-frontier-0" for r in trace)


def test_models_are_recorded(run):
    record = json.loads((run / "study.json").read_text())
    names = {"frontier"} | {
        f"{r}-{role}" for r in SIZES["tiny"].recipes for role in ("proxy", "target")
    }
    assert set(record["models"]) == names
    for name, model in record["models"].items():
        saved = json.loads((run / "models" / name / "training.json").read_text())
        assert saved["parameters"] == model["parameters"] > 0
        assert model["tokens"] == model["steps"] * model["batch"] * model["block"]
    proxy, target = record["models"]["sol8-proxy"], record["models"]["sol8-target"]
    assert proxy["parameters"] < target["parameters"] and proxy["tokens"] < target["tokens"]
    assert set(record["stages"]) >= {"train proxies and targets", "compare and rank"}


def test_target_accuracy_is_lm_evals_own(run):
    for recipe in SIZES["tiny"].recipes:
        path = results_file(run, f"{recipe}-target")
        results = json.loads(path.read_text())
        accuracy = results["results"]["study_arith"]["exact_match,strict-match"]
        (samples,) = path.parent.glob("samples_study_arith_*.jsonl")
        rows = [json.loads(line) for line in samples.open()]
        assert len(rows) == SIZES["tiny"].test_questions
        hits = []
        for row in rows:
            found = ANSWER.findall(row["resps"][0][0])
            hits.append(bool(found) and found[0] == row["doc"]["answer"].split("#### ")[-1])
        assert accuracy == pytest.approx(sum(hits) / len(hits), abs=1e-12)
        assert results["configs"]["study_arith"]["metadata"]["role"] == "target"


def test_proxies_scored_in_one_pass_and_compared(run):
    for recipe in SIZES["tiny"].recipes:
        results = json.loads(results_file(run, f"{recipe}-proxy").read_text())
        assert {"rbridge_gsm8k", "rbridge_baselines_gsm8k", "study_arith"} <= set(
            results["results"]
        )
        assert results["configs"]["rbridge_gsm8k"]["metadata"]["frontier_models"] == [
            "study-frontier-0"
        ]
    compare = json.loads((run / "compare" / "compare.json").read_text())
    assert [b["proxy_task"] for b in compare["benchmarks"]] == [
        "rbridge_gsm8k",
        "rbridge_baselines_gsm8k",
        "study_arith",
    ]
    assert "| benchmark |" in (run / "compare" / "compare.md").read_text()
    assert (run / "rank" / "rank.md").is_file()
    summary = (run / "summary.md").read_text()
    assert all(f"| {recipe} |" in summary for recipe in SIZES["tiny"].recipes)


def test_resumes_and_refuses_other_settings(run):
    before = {p: p.stat().st_mtime_ns for p in (run / "models").glob("*/model.safetensors")}
    again = study(run)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "[study] training" not in again.stderr and "$ rbridge eval" not in again.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before
    other = study(run, "--seed", "1")
    assert other.returncode == 2 and "other settings" in other.stderr
