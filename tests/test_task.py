"""The task's numbers (one `rbridge_document` request per trace) against the independent
reference (`tests/reference.py`: one transformers forward pass + method.md).

Every per-document number, for all six tasks and three tokenizer families (GPT-2 byte-level BPE,
SentencePiece with byte fallback and BOS, Llama-3-style regex pre-tokenizer), through `rbridge
eval` by subprocess; pieces mode (stock `hf`) against the same reference where it is exact.
`rbridge_gsm8k` through stock `hf` both ways a user runs it, by subprocess: plain `lm_eval
--include_path "$(rbridge tasks-path)"` and `rbridge eval`, to 1e-5. Pieces mode shares a
group's NLL among tokens a string-level backend cannot cut apart; the reference re-derives that
rule on its own terms.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference
from helpers import rbridge_eval, task_manager
from trace_fixtures import real_texts, write_benchmark_traces, write_jsonl
from transformers import AutoTokenizer

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.harness.api import evaluate
from rbridge_tasks.questions.sources import BENCHMARK_NAMES

# Per document, against float64 references of float32 passes. Sums over a whole trace (a few
# hundred tokens) get the same bound relative to their size.
TOLERANCE = 1e-5
SUMS = ("rbridge_nll_sum",)


@pytest.fixture(scope="module")
def six_traces(tmp_path_factory, frontier_dir) -> Path:
    return write_benchmark_traces(tmp_path_factory.mktemp("six"), frontier_dir, 2)


def trace_records(folder: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for benchmark in BENCHMARK_NAMES:
        for line in (folder / f"{benchmark}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            out[(benchmark, rec["id"])] = rec
    return out


def check(sample: dict, expected: dict[str, float], where) -> None:
    for metric, value in expected.items():
        tolerance = abs(value) * 1e-6 + TOLERANCE if metric in SUMS else TOLERANCE
        assert sample[metric] == pytest.approx(value, abs=tolerance), (where, metric)


@pytest.mark.parametrize("family", ["gpt2", "llama", "llama3"])
def test_every_number_of_the_group_matches_the_reference(
    family, request, six_traces, data_dir, tmp_path
):
    model_dir = request.getfixturevalue(f"{family}_dir")
    results, samples = rbridge_eval(
        tmp_path, "--model", "hf-rbridge", "--model_args", f"pretrained={model_dir}",
        "--tasks", "rbridge", "--metadata", f"traces={six_traces}", f"data_dir={data_dir}",
    )  # fmt: skip
    records = trace_records(six_traces)
    means = []
    for benchmark in BENCHMARK_NAMES:
        task = f"rbridge_{benchmark}"
        assert len(samples[task]) == 2, task
        for sample in samples[task]:
            doc = sample["doc"]
            expected = reference.document(
                model_dir, doc["prompt"] + " ", records[(benchmark, doc["id"])]
            )
            assert expected["context_truncated_tokens"] == 0
            check(sample, expected, (task, doc["id"]))
        row = results["results"][task]
        value = np.mean([s["rbridge_nll"] for s in samples[task]])
        assert row["rbridge_nll,none"] == pytest.approx(value, abs=1e-12)
        assert row["rbridge_nll_stderr,none"] == pytest.approx(
            np.std([s["rbridge_nll"] for s in samples[task]], ddof=1) / math.sqrt(2), abs=1e-12
        )
        means.append(value)
        hib = results["higher_is_better"][task]
        assert hib["rbridge_nll"] is False and hib["tok_top1"] is True
        assert hib["rbridge_weight_sum"] is None
    assert results["results"]["rbridge"]["rbridge_nll,none"] == pytest.approx(np.mean(means))


def test_benchmark_minmax_scope_through_rbridge_eval(gpt2_dir, six_traces, data_dir, tmp_path):
    _, samples = rbridge_eval(
        tmp_path, "--model", "hf-rbridge", "--model_args", f"pretrained={gpt2_dir}",
        "--tasks", "rbridge", "--metadata", f"traces={six_traces}", f"data_dir={data_dir}",
        "minmax_scope=benchmark",
    )  # fmt: skip
    records = trace_records(six_traces)
    for benchmark in BENCHMARK_NAMES:
        task = f"rbridge_{benchmark}"
        pairs = [
            (s["doc"]["prompt"] + " ", records[(benchmark, s["doc"]["id"])]) for s in samples[task]
        ]
        scale = reference.benchmark_scale(gpt2_dir, pairs)
        for sample, (context, rec) in zip(samples[task], pairs, strict=True):
            check(
                sample, reference.document(gpt2_dir, context, rec, scale=scale), (task, rec["id"])
            )


@pytest.mark.parametrize(
    "options",
    [
        {"minmax_on": "frontier_tokens"},
        {"minmax_on": "frontier_tokens", "minmax_scope": "benchmark"},
        {"aggregation": "weighted_mean"},
        {"aggregation": "sum"},
        {"last_tokens": 7},
        {"context": "concat"},
        {"context": "fewshot", "fewshot_k": 2},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_each_option_matches_the_reference(options, llama3_dir, gsm8k_pack, data_dir):
    out = evaluate(
        "hf-rbridge", ["rbridge_gsm8k"], model_args=f"pretrained={llama3_dir}",
        metadata={"traces": str(gsm8k_pack), "data_dir": str(data_dir), **options},
        bootstrap_iters=0, batch_size=2,
    )  # fmt: skip
    records = {json.loads(x)["id"]: json.loads(x) for x in gsm8k_pack.read_text().splitlines()}
    delimiter = "" if options.get("context") == "concat" else " "
    samples = out["samples"]["rbridge_gsm8k"]
    pairs = [(s["doc"]["prompt"] + delimiter, records[s["doc"]["id"]]) for s in samples]
    minmax_on = options.get("minmax_on", "proxy_tokens")
    scale = None
    if options.get("minmax_scope") == "benchmark":
        scale = reference.benchmark_scale(llama3_dir, pairs, minmax_on)
    for sample, (context, rec) in zip(samples, pairs, strict=True):
        if options.get("context") == "concat":
            assert not sample["doc"]["prompt"].startswith("Question:")
            assert context.endswith(rec["question"][-20:].rstrip()) or context
        expected = reference.document(
            llama3_dir, context, rec, minmax_on=minmax_on, scale=scale,
            aggregation=options.get("aggregation", "mean"), last_tokens=options.get("last_tokens"),
        )  # fmt: skip
        check(sample, expected, rec["id"])


def test_pieces_mode_on_stock_hf_matches_the_reference_and_document_mode(
    gpt2_dir, six_traces, data_dir
):
    common = {"traces": str(six_traces), "data_dir": str(data_dir)}
    stock = evaluate("hf", ["rbridge"], model_args=f"pretrained={gpt2_dir}", metadata=common,
                     bootstrap_iters=0, batch_size=32)  # fmt: skip
    document = evaluate("hf-rbridge", ["rbridge"], model_args=f"pretrained={gpt2_dir}",
                        metadata=common, bootstrap_iters=0, batch_size=32)  # fmt: skip
    records = trace_records(six_traces)
    for benchmark in BENCHMARK_NAMES:
        task = f"rbridge_{benchmark}"
        by_id = {s["doc"]["id"]: s for s in document["samples"][task]}
        for sample in stock["samples"][task]:
            rec = records[(benchmark, sample["doc"]["id"])]
            context = sample["doc"]["prompt"] + " "
            check(sample, reference.document(gpt2_dir, context, rec, pieces=True), rec["id"])
            assert "tok_top1" not in sample  # token statistics need document mode
            _, _, _, _, groups, _ = reference.token_pass(gpt2_dir, context, rec["trace"])
            if groups == list(range(1, len(groups) + 1)):  # every token on its own: exact
                for metric in ("rbridge_nll", "trace_nll", "trace_bpb", "rbridge_weight_sum"):
                    assert sample[metric] == pytest.approx(by_id[rec["id"]][metric], abs=1e-5)


def test_an_over_long_context_is_cut_from_the_left_and_flagged(gpt2_dir, gsm8k_pack, data_dir):
    records = {json.loads(x)["id"]: json.loads(x) for x in gsm8k_pack.read_text().splitlines()}
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    longest_trace = max(len(tokenizer(" " + r["trace"]).input_ids) for r in records.values())
    max_length = longest_trace + 8  # every trace fits, but not with its whole question
    out = evaluate(
        "hf-rbridge", ["rbridge_gsm8k"],
        model_args=f"pretrained={gpt2_dir},max_length={max_length}",
        metadata={"traces": str(gsm8k_pack), "data_dir": str(data_dir)}, bootstrap_iters=0,
    )  # fmt: skip
    cut = 0
    for sample in out["samples"]["rbridge_gsm8k"]:
        rec = records[sample["doc"]["id"]]
        context = sample["doc"]["prompt"] + " "
        expected = reference.document(gpt2_dir, context, rec, max_length=max_length)
        check(sample, expected, rec["id"])
        cut += expected["context_truncated_tokens"] > 0
    assert cut >= 1


def test_the_removed_scoring_option_is_refused(gsm8k_pack, data_dir):
    with pytest.raises(RBridgeError, match=r"--metadata scoring=\.\.\.: no longer an option"):
        task_manager(traces=gsm8k_pack, data_dir=data_dir, scoring="pieces").load(["rbridge_gsm8k"])


def test_a_misspelt_option_names_the_closest_one(gsm8k_pack, data_dir):
    with pytest.raises(
        RBridgeError,
        match=r"minmax_scop=\.\.\.: unknown rBridge option; did you mean 'minmax_scope'",
    ):
        task_manager(traces=gsm8k_pack, data_dir=data_dir, minmax_scop="trace").load(
            ["rbridge_gsm8k"]
        )
    with pytest.raises(RBridgeError, match=r"tracess=\.\.\.: .* did you mean 'traces'"):
        task_manager(tracess=gsm8k_pack, data_dir=data_dir).load(["rbridge_gsm8k"])
    tasks = task_manager(traces=gsm8k_pack, data_dir=data_dir, recipe="web-v2").load(
        ["rbridge_gsm8k"]
    )
    assert tasks["tasks"]["rbridge_gsm8k"].config.metadata["recipe"] == "web-v2"


@pytest.fixture(scope="module")
def equal_letters_pack(tmp_path_factory) -> Path:
    """Traces whose letters all carry one probability: one frontier token spelling the whole
    trace, and many tokens with equal logprobs (log 0.1, whose float means land a bit apart)."""
    (id0, q0, t0), (id1, q1, t1) = real_texts("gsm8k", 2)
    pieces = re.findall(r"\s*\S+|\s+", t1)
    records = [
        {"id": id0, "benchmark": "gsm8k", "question": q0, "trace": t0,
         "frontier_model": "hand", "frontier_tokens": [{"text": t0, "logprob": -0.3}]},
        {"id": id1, "benchmark": "gsm8k", "question": q1, "trace": t1, "frontier_model": "hand",
         "frontier_tokens": [{"text": p, "logprob": math.log(0.1)} for p in pieces]},
    ]  # fmt: skip
    return write_jsonl(tmp_path_factory.mktemp("equal") / "gsm8k.jsonl", records)


@pytest.mark.parametrize("model", ["hf-rbridge", "hf"])
@pytest.mark.parametrize("family", ["gpt2", "llama", "llama3"])
def test_equal_letter_probabilities_give_every_token_weight_one(
    model, family, request, equal_letters_pack, data_dir
):
    """MinMax of equal values is all ones (method.md), so rbridge_nll is the plain trace NLL,
    in document mode and in pieces mode alike."""
    model_dir = request.getfixturevalue(f"{family}_dir")
    out = evaluate(
        model, ["rbridge_gsm8k"], model_args=f"pretrained={model_dir}", batch_size=2,
        metadata={"traces": str(equal_letters_pack), "data_dir": str(data_dir)},
        bootstrap_iters=0,
    )  # fmt: skip
    samples = out["samples"]["rbridge_gsm8k"]
    assert len(samples) == 2
    for sample in samples:
        assert sample["rbridge_weight_sum"] == sample["trace_tokens"], sample["doc"]["id"]
        assert sample["rbridge_nll"] == pytest.approx(sample["trace_nll"], rel=1e-12)


def test_use_cache_answers_a_rerun_from_lm_evals_database(gpt2_dir, gsm8k_pack, data_dir, tmp_path):
    """`--use_cache` caches lm-eval's own request types; document requests go into the same
    database, so a rerun computes nothing and reports the same numbers."""
    runs = []
    for n in (1, 2):
        command = [sys.executable, "-m", "rbridge_tasks.cli", "eval", "--model", "hf-rbridge",
                   "--model_args", f"pretrained={gpt2_dir}", "--device", "cpu",
                   "--tasks", "rbridge_gsm8k", "--use_cache", str(tmp_path / "cache"),
                   "--output_path", str(tmp_path / f"out{n}"), "--log_samples",
                   "--metadata", f"traces={gsm8k_pack}", f"data_dir={data_dir}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        path = next((tmp_path / f"out{n}").rglob("samples_*.jsonl"))
        runs.append(([json.loads(x) for x in path.read_text().splitlines()], done.stderr))
    (first, first_log), (second, second_log) = runs
    assert "rbridge_document: 0 of 3 responses read from the --use_cache database" in first_log
    assert "rbridge_document: 3 of 3 responses read from the --use_cache database" in second_log
    assert "rbridge documents:" not in second_log  # no forward pass
    for a, b in zip(first, second, strict=True):
        assert {k: v for k, v in a.items() if k.startswith(("rbridge_", "tok_", "trace_"))} == {
            k: v for k, v in b.items() if k.startswith(("rbridge_", "tok_", "trace_"))
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
    gpt2_dir, gsm8k_pack, data_dir, tmp_path
):
    tasks_dir = subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "tasks-path"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    lm_eval = [sys.executable, "-m", "lm_eval", "--include_path", tasks_dir]
    results, samples = run_and_load(lm_eval, "hf", gpt2_dir, gsm8k_pack, data_dir, tmp_path)
    check_against_independent(gpt2_dir, gsm8k_pack, results, samples)
    metadata = results["configs"]["rbridge_gsm8k"]["metadata"]
    assert metadata["traces"] == str(gsm8k_pack) and "scoring" not in metadata
    assert metadata["traces_source"] == str(gsm8k_pack.resolve())
    assert metadata["frontier_models"] == ["tiny-frontier"] and metadata["pack_documents"] == 3
    assert metadata["questions_without_trace"] == metadata["benchmark_questions"] - 3 == 1316


def test_rbridge_eval_matches_independent_computation(llama_dir, gsm8k_pack, data_dir, tmp_path):
    rbridge_eval = [sys.executable, "-m", "rbridge_tasks.cli", "eval"]
    results, samples = run_and_load(rbridge_eval, "hf", llama_dir, gsm8k_pack, data_dir, tmp_path)
    check_against_independent(llama_dir, gsm8k_pack, results, samples)
