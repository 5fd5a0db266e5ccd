"""Acceptance: `rbridge_gsm8k` through lm-eval's stock `hf` backend equals an independent
computation (one transformers forward pass + the method.md formula) to 1e-5.

Both ways to run it are exercised by subprocess: plain `lm_eval --include_path "$(rbridge
tasks-path)"` and `rbridge eval`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from trace_fixtures import real_texts, record, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def gsm8k_traces(tmp_path_factory, frontier_dir) -> Path:
    records = [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 3)]
    return write_jsonl(tmp_path_factory.mktemp("traces") / "gsm8k.jsonl", records)


def independent_scores(model_dir: Path, prompt: str, trace_record: dict) -> dict[str, float]:
    """method.md written out directly, sharing no code with the package.

    One documented departure from per-token exactness, re-derived here on its own terms: a
    string-level backend cannot score a token whose preceding text tokenizes differently on its
    own (a BPE merge across the cut), so such tokens are scored with the next ones as a group
    and each takes the group's mean NLL, keeping its own weight.
    """
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    context = prompt + " "
    text = context + trace_record["trace"]
    enc = tokenizer(text, return_offsets_mapping=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits.double(), dim=-1)[0]
    conf = np.exp([t["logprob"] for t in trace_record["frontier_tokens"]])
    norm = (conf - conf.min()) / (conf.max() - conf.min())
    char_w = np.concatenate(
        [[w] * len(t["text"]) for w, t in zip(norm, trace_record["frontier_tokens"], strict=True)]
    )
    nll, weights, group_ends = [], [], []
    for i, (start, end) in enumerate(enc.offset_mapping):
        if start < len(prompt):
            continue  # the question is context only
        nll.append(-float(logprobs[i - 1, enc.input_ids[i]]))
        lo, hi = max(start, len(context)) - len(context), end - len(context)
        weights.append(char_w[lo:hi].mean() if hi > lo else 0.0)
        if tokenizer(text[:end]).input_ids == enc.input_ids[: i + 1]:
            group_ends.append(len(nll))
    nll, weights = np.array(nll), np.array(weights)
    shared = nll.copy()
    for lo, hi in zip([0, *group_ends[:-1]], group_ends, strict=True):
        shared[lo:hi] = nll[lo:hi].mean()
    return {
        "rbridge_nll": float((weights * shared).sum() / weights.sum()),
        "trace_nll": float(nll.mean()),
        "trace_bpb": float(nll.sum() / math.log(2) / len((" " + trace_record["trace"]).encode())),
        "rbridge_nll_sum": float((weights * shared).sum()),
        "rbridge_weight_sum": float(weights.sum()),
    }


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
        expected = independent_scores(
            model_dir, sample["doc"]["prompt"], by_id[sample["doc"]["id"]]
        )
        for metric, value in expected.items():
            assert sample[metric] == pytest.approx(value, abs=TOLERANCE), (
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
    assert results["configs"]["rbridge_gsm8k"]["metadata"]["traces"] == str(gsm8k_traces)


def test_rbridge_eval_matches_independent_computation(llama_dir, gsm8k_traces, data_dir, tmp_path):
    rbridge_eval = [sys.executable, "-m", "rbridge_tasks.cli", "eval"]
    results, samples = run_and_load(rbridge_eval, "hf", llama_dir, gsm8k_traces, data_dir, tmp_path)
    check_against_independent(llama_dir, gsm8k_traces, results, samples)
