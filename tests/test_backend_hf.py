"""The one-pass `hf-rbridge` backend: data parallelism on two real ranks (CPU processes over
gloo, `tests/data_parallel_run.py`) through lm-eval's own evaluator, barriers and gathers, and
the batch-size probe; the context window (a trace that alone does not fit) and the logits
budget."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rbridge_tasks.harness.api import evaluate

TORCHRUN = shutil.which("torchrun", path=os.path.dirname(sys.executable))
RUNNER = Path(__file__).with_name("data_parallel_run.py")


def two_ranks(model_dir, gsm8k_pack, data_dir, limit: int, out: Path):
    command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", str(RUNNER), str(model_dir),
               str(gsm8k_pack), str(data_dir), str(limit), str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the timeout is the hang detector: a rank out of step waits at a barrier forever
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def test_two_ranks_give_the_single_process_numbers(gpt2_dir, gsm8k_pack, data_dir, tmp_path):
    done = two_ranks(gpt2_dir, gsm8k_pack, data_dir, 3, tmp_path / "out.json")
    assert done.returncode == 0, done.stderr[-3000:]
    merged = json.loads((tmp_path / "out.json").read_text())
    single = evaluate(
        "hf-rbridge", ["rbridge_gsm8k"], model_args=f"pretrained={gpt2_dir}", bootstrap_iters=0,
        metadata={"traces": str(gsm8k_pack), "data_dir": str(data_dir)},
    )["samples"]["rbridge_gsm8k"]  # fmt: skip
    assert sorted(merged) == sorted(s["doc"]["id"] for s in single)
    for sample in single:
        assert merged[sample["doc"]["id"]] == pytest.approx(sample["rbridge_nll"], abs=1e-6)


def test_fewer_documents_than_ranks_stops_every_rank_with_one_line(
    gpt2_dir, gsm8k_pack, data_dir, tmp_path
):
    done = two_ranks(gpt2_dir, gsm8k_pack, data_dir, 1, tmp_path / "out.json")
    assert done.returncode != 0
    message = (
        "rbridge_gsm8k: 1 document(s) for 2 data-parallel ranks; lm-eval needs at least one "
        "document per rank"
    )
    assert sum(message in line for line in done.stderr.splitlines()) >= 2, done.stderr[-3000:]


def test_rbridge_eval_refuses_it_before_the_model_loads(gsm8k_pack, data_dir, tmp_path):
    command = [sys.executable, "-m", "rbridge_tasks.cli", "eval", "--model", "hf-rbridge",
               "--model_args", "pretrained=org/not-cached-model", "--tasks", "rbridge_gsm8k",
               "--limit", "1", "--metadata", f"traces={gsm8k_pack}",
               f"data_dir={data_dir}"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "WORLD_SIZE": "2"}
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        "rbridge eval: error: rbridge_gsm8k: 1 document(s) for 2 data-parallel ranks; lm-eval "
        "needs at least one document per rank: run it with fewer processes (or more documents, "
        "e.g. a larger --limit)"
    ]


def test_a_trace_that_alone_does_not_fit_is_one_clear_error(
    gpt2_dir, gsm8k_pack, data_dir, tmp_path
):
    command = [sys.executable, "-m", "rbridge_tasks.cli", "eval", "--model", "hf-rbridge",
               "--model_args", f"pretrained={gpt2_dir},max_length=64", "--device", "cpu",
               "--tasks", "rbridge_gsm8k", "--metadata", f"traces={gsm8k_pack}",
               f"data_dir={data_dir}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert re.search(
        r"rbridge_gsm8k: document '\d+': the trace alone is \d+ proxy tokens, more than the "
        r"model's max_length of 64",
        done.stderr,
    ), done.stderr[-2000:]


def test_the_logits_budget_splits_batches_without_changing_numbers(
    llama3_dir, gsm8k_pack, data_dir
):
    """A 1 MB budget forces one document per forward pass (3 x ~400 positions x 1200 x 4 bytes
    is over it); every number must equal the batched run's to float32 reproducibility."""
    runs = [
        evaluate(
            "hf-rbridge", ["rbridge_gsm8k"],
            model_args=f"pretrained={llama3_dir}{extra}", batch_size=8, bootstrap_iters=0,
            metadata={"traces": str(gsm8k_pack), "data_dir": str(data_dir)},
        )["samples"]["rbridge_gsm8k"]
        for extra in ("", ",logits_budget_mb=1")
    ]  # fmt: skip
    for batched, single in zip(*runs, strict=True):
        for metric, value in batched.items():
            if metric.startswith(("rbridge_", "trace_", "tok_")):
                assert single[metric] == pytest.approx(value, rel=1e-6, abs=1e-5), metric
