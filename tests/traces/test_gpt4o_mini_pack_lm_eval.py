"""Acceptance: a pack from the real GPT-4o-mini GSM8K traces, with confidences from a local
model, runs through `rbridge_gsm8k` with the documented lm_eval command."""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rbridge_tasks import tasks_path
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.cli import main as traces_main


def test_gpt4o_mini_gsm8k_pack_runs_through_rbridge_gsm8k(
    data_dir, frontier_dir, gpt2_dir, tmp_path
):
    source = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    text, pack = tmp_path / "gsm8k-text.jsonl", tmp_path / "gsm8k.jsonl"
    assert (
        traces_main(
            [
                "import",
                "--format",
                "rereading",
                source,
                "--data-dir",
                str(data_dir),
                "--out",
                str(text),
            ]
        )
        == 0
    )
    assert (
        traces_main(
            [
                "confidences",
                str(text),
                str(pack),
                "--model",
                str(frontier_dir),
                "--data-dir",
                str(data_dir),
                "--limit",
                "4",
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    argv = ["validate", str(pack), "--data-dir", str(data_dir), "--strict", "--min-coverage", "0"]
    assert traces_main(argv) == 0

    lm_eval = Path(sys.executable).with_name("lm_eval")
    out = tmp_path / "lm-eval"
    command = [
        str(lm_eval),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={gpt2_dir}",
        "--include_path",
        str(tasks_path()),
        "--tasks",
        "rbridge_gsm8k",
        "--metadata",
        f"traces={pack}",
        f"data_dir={data_dir}",
        "--limit",
        "2",
        "--batch_size",
        "64",
        "--device",
        "cpu",
        "--output_path",
        str(out),
        "--log_samples",
    ]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]["rbridge_gsm8k"]
    assert results["sample_len"] == 2
    (samples_file,) = out.rglob("samples_rbridge_gsm8k_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    records = {r.id: r for r in read_traces(pack)}
    assert [s["doc"]["id"] for s in samples] == ["0", "1"]  # the pack's first ids
    for sample in samples:
        record = records[sample["doc"]["id"]]
        nll, nll_sum, weight_sum, tokens = (
            float(sample[k])
            for k in ("rbridge_nll", "rbridge_nll_sum", "rbridge_weight_sum", "trace_tokens")
        )
        assert math.isfinite(nll) and nll > 0
        assert nll == pytest.approx(nll_sum / tokens, rel=1e-9)  # Algorithm 1: the plain mean
        # Proxy and confidence model share a tokenizer here, so proxy tokens are the frontier
        # tokens and their weights are the pack's MinMax-normalised confidences; only a token at
        # the prompt/trace boundary (weight at most 1) may differ.
        confidences = np.exp(np.array(record.token_logprobs))
        weights = (confidences - confidences.min()) / (confidences.max() - confidences.min())
        assert abs(weight_sum - weights.sum()) <= 1.0 + 1e-9
    assert results["rbridge_nll,none"] == pytest.approx(
        np.mean([float(s["rbridge_nll"]) for s in samples]), rel=1e-12
    )
