"""Task-level inputs: each bad input gets one clear error; options change what they say."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from helpers import evaluate, task_manager
from lm_eval.models.huggingface import HFLM
from trace_fixtures import real_texts, record, write_jsonl

from rbridge_tasks.core.errors import RBridgeError


@pytest.fixture(scope="module")
def gsm8k_records(frontier_dir):
    return [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 2)]


def load(tmp_path, **metadata):
    return task_manager(**metadata).load(["rbridge_gsm8k"])


def test_missing_traces_file(tmp_path, data_dir):
    with pytest.raises(
        RBridgeError, match=r"traces file not found: .*nope\.jsonl \(from --metadata"
    ):
        load(tmp_path, traces=tmp_path / "nope.jsonl", data_dir=data_dir)


def test_no_traces_and_no_hub_says_what_to_pass(data_dir):
    with pytest.raises(
        RBridgeError, match=r"no --metadata traces given .* pass --metadata traces=FILE"
    ):
        task_manager(data_dir=data_dir).load(["rbridge_gsm8k"])


def test_trace_ids_not_in_the_benchmark(tmp_path, data_dir, gsm8k_records):
    bad = [{**gsm8k_records[0], "id": "99999"}, gsm8k_records[1]]
    with pytest.raises(
        RBridgeError,
        match=r"1 trace id\(s\) are not gsm8k question ids, e\.g\. "
        r"\['99999'\]; .* look like \['0', '1', '2'\]",
    ):
        load(tmp_path, traces=write_jsonl(tmp_path / "t.jsonl", bad), data_dir=data_dir)


def test_traces_joined_to_the_wrong_question(tmp_path, data_dir, gsm8k_records):
    shifted = [{**gsm8k_records[0], "id": "5"}]
    path = write_jsonl(tmp_path / "t.jsonl", shifted)
    with pytest.raises(
        RBridgeError,
        match=r"id '5', field 'question': the trace's question .* "
        r"does not contain the benchmark's question",
    ):
        load(tmp_path, traces=path, data_dir=data_dir)
    tasks = load(tmp_path, traces=path, data_dir=data_dir, check_questions="false")
    assert len(tasks["tasks"]["rbridge_gsm8k"].eval_docs) == 1


def test_traces_of_another_benchmark_only(tmp_path, data_dir, gsm8k_records):
    other = [{**gsm8k_records[0], "benchmark": "math500"}]
    with pytest.raises(
        RBridgeError, match=r"has no traces for benchmark 'gsm8k' \(it has \['math500'\]\)"
    ):
        load(tmp_path, traces=write_jsonl(tmp_path / "t.jsonl", other), data_dir=data_dir)


def test_records_of_a_benchmark_of_ones_own_are_not_the_six(tmp_path, data_dir, gsm8k_records):
    """A benchmark name outside the six is a benchmark of the user's own: it never serves one of
    the six; a name that cannot be one is refused where it is read."""
    other = [{**gsm8k_records[0], "benchmark": "gsm8k_v2"}]
    with pytest.raises(
        RBridgeError, match=r"has no traces for benchmark 'gsm8k' \(it has \['gsm8k_v2'\]\)"
    ):
        load(tmp_path, traces=write_jsonl(tmp_path / "t.jsonl", other), data_dir=data_dir)
    bad = [{**gsm8k_records[0], "benchmark": "gsm8k v2"}]
    with pytest.raises(
        RBridgeError, match=r"line 1, id '0', field 'benchmark': must be a benchmark name"
    ):
        load(tmp_path, traces=write_jsonl(tmp_path / "t2.jsonl", bad), data_dir=data_dir)


def test_bad_option_values(tmp_path, data_dir, gsm8k_records):
    path = write_jsonl(tmp_path / "t.jsonl", gsm8k_records)
    with pytest.raises(RBridgeError, match=r"minmax_scope='doc': expected one of"):
        load(tmp_path, traces=path, data_dir=data_dir, minmax_scope="doc")
    with pytest.raises(RBridgeError, match=r"strict_split='maybe': expected true or false"):
        load(tmp_path, traces=path, data_dir=data_dir, strict_split="maybe")


def test_unknown_proxy_tokenizer_says_to_pass_one(tmp_path, data_dir, gsm8k_records, gpt2_dir):
    """`minmax_scope=benchmark` reads the benchmark's range with the proxy's tokenizer before
    any model runs; a built model object names none, so the task asks for it in one line (the
    model itself answers with its own tokenizer, and needs no name)."""
    from lm_eval import simple_evaluate

    path = write_jsonl(tmp_path / "t.jsonl", gsm8k_records)
    lm = HFLM(pretrained=str(gpt2_dir), device="cpu", batch_size=8)
    manager = task_manager(traces=path, data_dir=data_dir, minmax_scope="benchmark")
    with pytest.raises(RBridgeError, match=r"pass --metadata tokenizer=NAME_OR_PATH"):
        simple_evaluate(model=lm, tasks=["rbridge_gsm8k"], bootstrap_iters=0, task_manager=manager)
    out = simple_evaluate(
        model=lm,
        tasks=["rbridge_gsm8k"],
        bootstrap_iters=0,
        task_manager=task_manager(traces=path, data_dir=data_dir),
    )
    assert np.isfinite(out["results"]["rbridge_gsm8k"]["rbridge_nll,none"])


@pytest.fixture(scope="module")
def unstable_split_traces(tmp_path_factory, frontier_dir):
    """A MATH-500 solution in which the tiny GPT-2 tokenizer merges across a token boundary."""
    doc_id, question, text = real_texts("math500", 2)[1]
    path = tmp_path_factory.mktemp("unstable") / "math500.jsonl"
    return write_jsonl(path, [record(frontier_dir, "math500", doc_id, question, text)])


def test_tokens_scored_as_a_group_are_reported_or_refused(
    unstable_split_traces, data_dir, gpt2_dir, caplog
):
    with caplog.at_level(logging.WARNING):
        out = evaluate(
            gpt2_dir, ["rbridge_math500"], traces=unstable_split_traces, data_dir=data_dir
        )
    assert "share the group's mean NLL; set --metadata strict_split=true" in caplog.text
    assert np.isfinite(out["results"]["rbridge_math500"]["rbridge_nll,none"])
    with pytest.raises(
        RBridgeError,
        match=r"document 'test/intermediate_algebra/1994.json': .* "
        r"\(strict_split=true\)",
    ):
        evaluate(
            gpt2_dir,
            ["rbridge_math500"],
            traces=unstable_split_traces,
            data_dir=data_dir,
            strict_split="true",
        )
    assert (
        json.loads(unstable_split_traces.read_text())["id"] == "test/intermediate_algebra/1994.json"
    )
