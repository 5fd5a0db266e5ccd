"""Each of the six tasks loads its real benchmark questions, joins them with traces by id, and
scores a few documents; the `rbridge` group runs all six from one traces folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lm_eval_runs import evaluate
from test_task_end_to_end import TOLERANCE, independent_scores
from trace_fixtures import write_benchmark_traces

from rbridge_tasks.benchmarks import BENCHMARK_NAMES


@pytest.fixture(scope="module")
def traces_dir(tmp_path_factory, frontier_dir):
    return write_benchmark_traces(tmp_path_factory.mktemp("six"), frontier_dir, 2)


def test_group_runs_all_six_benchmarks_on_real_questions(gpt2_dir, traces_dir, data_dir):
    out = evaluate(gpt2_dir, ["rbridge"], traces=traces_dir, data_dir=data_dir)
    means = []
    for benchmark in BENCHMARK_NAMES:
        task = f"rbridge_{benchmark}"
        lines = (traces_dir / f"{benchmark}.jsonl").read_text().splitlines()
        trace_records = {r["id"]: r for r in map(json.loads, lines)}
        samples = out["samples"][task]
        assert sorted(s["doc"]["id"] for s in samples) == sorted(trace_records), task
        for sample in samples:
            doc = sample["doc"]
            assert doc["benchmark"] == benchmark
            assert doc["question"] and doc["question"] in trace_records[doc["id"]]["question"]
            expected = independent_scores(gpt2_dir, doc["prompt"], trace_records[doc["id"]])
            for metric in ("rbridge_nll", "trace_nll", "trace_bpb"):
                assert sample[metric] == pytest.approx(expected[metric], abs=TOLERANCE), (
                    task,
                    metric,
                )
        value = out["results"][task]["rbridge_nll,none"]
        assert value == pytest.approx(np.mean([s["rbridge_nll"] for s in samples]), abs=1e-12)
        means.append(value)
    group = out["results"]["rbridge"]
    assert group["rbridge_nll,none"] == pytest.approx(np.mean(means), abs=1e-9)
