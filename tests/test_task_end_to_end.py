"""Acceptance: `rbridge_gsm8k` through lm-eval's stock `hf` backend (pieces mode) equals the
independent reference (`tests/reference.py`: one transformers forward pass + method.md) to 1e-5.

Both ways to run it are exercised by subprocess: plain `lm_eval --include_path "$(rbridge
tasks-path)"` and `rbridge eval`. Pieces mode shares a group's NLL among tokens a string-level
backend cannot cut apart; the reference re-derives that rule on its own terms.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference
from trace_fixtures import real_texts, record, write_jsonl

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def gsm8k_traces(tmp_path_factory, frontier_dir) -> Path:
    records = [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 3)]
    return write_jsonl(tmp_path_factory.mktemp("traces") / "gsm8k.jsonl", records)


def run_and_load(
    cli: list[str], model: str, model_dir: Path, traces: Path, data_dir: Path, out_dir: Path
) -> tuple[dict, list[dict]]:
    """Run `cli` (an lm-eval command line up to its flags) on rbridge_gsm8k; load what it wrote."""
    command = [
        *cli, "--model", model, "--model_args", f"pretrained={model_dir}", "--device", "cpu",
        "--tasks", "rbridge_gsm8k", "--metadata", f"traces={traces}", f"data_dir={data_dir}",
        "--batch_size", "16", "--output_path", str(out_dir), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results_file = next(out_dir.rglob("results_*.json"))
    samples_file = next(out_dir.rglob("samples_rbridge_gsm8k_*.jsonl"))
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    return json.loads(results_file.read_text()), samples


def check_against_independent(model_dir: Path, traces: Path, results: dict, samples: list[dict]):
    by_id = {json.loads(line)["id"]: json.loads(line) for line in traces.read_text().splitlines()}
    assert sorted(s["doc"]["id"] for s in samples) == sorted(by_id)
    expected_means: dict[str, list[float]] = {}
    for sample in samples:
        expected = reference.document(
            model_dir, sample["doc"]["prompt"] + " ", by_id[sample["doc"]["id"]], pieces=True
        )
        for metric, value in expected.items():
            tolerance = TOLERANCE + (1e-6 * abs(value) if metric == "rbridge_nll_sum" else 0)
            assert sample[metric] == pytest.approx(value, abs=tolerance), (
                metric,
                sample["doc"]["id"],
            )
            expected_means.setdefault(metric, []).append(value)
    row = results["results"]["rbridge_gsm8k"]
    for metric, values in expected_means.items():
        assert row[f"{metric},none"] == pytest.approx(np.mean(values), abs=TOLERANCE), metric
        assert row[f"{metric}_stderr,none"] == pytest.approx(
            np.std(values, ddof=1) / math.sqrt(len(values)), abs=TOLERANCE
        ), metric
    assert results["higher_is_better"]["rbridge_gsm8k"]["rbridge_nll"] is False


def test_stock_lm_eval_cli_matches_independent_computation(
    gpt2_dir, gsm8k_traces, data_dir, tmp_path
):
    tasks_dir = subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "tasks-path"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    lm_eval = [sys.executable, "-m", "lm_eval", "--include_path", tasks_dir]
    results, samples = run_and_load(lm_eval, "hf", gpt2_dir, gsm8k_traces, data_dir, tmp_path)
    check_against_independent(gpt2_dir, gsm8k_traces, results, samples)
    metadata = results["configs"]["rbridge_gsm8k"]["metadata"]
    assert metadata["traces"] == str(gsm8k_traces) and "scoring" not in metadata
    assert metadata["traces_source"] == str(gsm8k_traces.resolve())
    assert metadata["frontier_models"] == ["tiny-frontier"] and metadata["pack_documents"] == 3
    assert metadata["questions_without_trace"] == metadata["benchmark_questions"] - 3 == 1316


def test_rbridge_eval_matches_independent_computation(llama_dir, gsm8k_traces, data_dir, tmp_path):
    rbridge_eval = [sys.executable, "-m", "rbridge_tasks.cli", "eval"]
    results, samples = run_and_load(rbridge_eval, "hf", llama_dir, gsm8k_traces, data_dir, tmp_path)
    check_against_independent(llama_dir, gsm8k_traces, results, samples)
