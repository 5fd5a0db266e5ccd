"""The released `trillionlabs/rBridge` layout: default field names, a mapping file for others,
and a clear error when neither matches."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
import yaml
from lm_eval_runs import task_manager
from released_layout_fixture import write_config
from trace_fixtures import real_texts, record

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.harness.documents import build_documents
from rbridge_tasks.harness.options import TaskSettings
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.answer_lines import scored_span
from rbridge_tasks.records.released import ReleasedMapping, read_released

FIELDS = {
    "id": "id",
    "question": "question",
    "trace": "response",
    "answer": "pred",
    "correct": "correct",
    "tid": "id",
    "token": "token",
    "logprob": "logprob",
    "pos": "position",
}


def write_released(root: Path, records: list[dict], fields: dict[str, str]) -> Path:
    entries, rows = [], []
    for r in records:
        answer_line = "\nThe answer is 42."
        entries.append(
            {
                fields["id"]: r["id"],
                fields["question"]: r["question"],
                fields["trace"]: r["trace"] + answer_line,
                fields["answer"]: "42",
                fields["correct"]: False,
            }
        )
        tokens = [*r["frontier_tokens"], {"text": answer_line, "logprob": -0.01}]
        rows += [
            {
                fields["tid"]: r["id"],
                fields["token"]: t["text"],
                fields["logprob"]: t["logprob"],
                fields["pos"]: i,
            }
            for i, t in enumerate(tokens)
        ]
    random.Random(0).shuffle(rows)  # positions, not file order, give the token order
    write_config(root, "gsm8k", entries, rows)
    return root


@pytest.fixture(scope="module")
def records(frontier_dir):
    """Reasoning without its own closing answer, so the released copy's answer line is the tail."""
    return [
        record(frontier_dir, "gsm8k", i, q, scored_span(t).trace(t))
        for i, q, t in real_texts("gsm8k", 2)
    ]


def test_default_layout_is_read_and_the_answer_line_stripped(tmp_path, records):
    root = write_released(tmp_path, records, FIELDS)
    got = read_released(root, "gsm8k")
    assert [r.id for r in got] == [r["id"] for r in records]
    for rec, expected in zip(got, records, strict=True):
        assert rec.trace == expected["trace"]
        assert list(rec.token_logprobs) == [t["logprob"] for t in expected["frontier_tokens"]]
        assert rec.answer == "42" and rec.correct is False
        assert rec.meta["stripped_answer_text"] == "\nThe answer is 42."


def test_other_field_names_through_a_mapping_file(tmp_path, records):
    fields = {
        "id": "qid",
        "question": "prompt_text",
        "trace": "gen",
        "answer": "final",
        "correct": "ok",
        "tid": "qid",
        "token": "tok",
        "logprob": "lp",
        "pos": "step",
    }
    root = write_released(tmp_path / "data", records, fields)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "trace_id": "qid",
                "question": "prompt_text",
                "trace": "gen",
                "answer": ["final"],
                "correct": "ok",
                "logprob_trace_id": "qid",
                "logprob_token": "tok",
                "logprob_value": "lp",
                "logprob_position": "step",
            }
        )
    )
    got = read_released(root, "gsm8k", ReleasedMapping.load(mapping))
    assert [r.trace for r in got] == [r["trace"] for r in records]
    with pytest.raises(RBridgeError) as caught:
        read_released(root, "gsm8k")
    folder = root / "traces" / "gsm8k"
    assert str(caught.value) == (
        f"{folder / 'gpt4o_s1_new.json'}: the completions' keys are not recognised: "
        f"no trace_id (tried {list(ReleasedMapping.trace_id)}); "
        f"no question (tried {list(ReleasedMapping.question)}); "
        f"no trace (tried {list(ReleasedMapping.trace)}). The completions have the keys "
        "['final', 'gen', 'ok', 'prompt_text', 'qid']. See how each folder reads with `rbridge "
        f"traces import --format released --inspect {root}`, then name the fields in a mapping "
        "file (JSON or YAML, e.g. `trace: my_field`; dotted names reach nested fields) passed "
        "with --metadata released_mapping=FILE, or --mapping FILE for `rbridge traces import`"
    )


def test_released_folder_through_the_task(tmp_path, records, data_dir):
    root = write_released(tmp_path, records, FIELDS)
    task = task_manager(traces=root, data_dir=data_dir).load(["rbridge_gsm8k"])["tasks"][
        "rbridge_gsm8k"
    ]
    docs = list(task.eval_docs)
    assert [d["id"] for d in docs] == [r["id"] for r in records]
    assert docs[0]["trace"] == records[0]["trace"]


def test_layout_errors(tmp_path, records):
    with pytest.raises(RBridgeError, match=r"folder not found: .*traces/cqa"):
        read_released(tmp_path, "csqa")
    root = write_released(tmp_path, records, FIELDS)
    with pytest.raises(RBridgeError, match=r"unknown mapping key\(s\) \['trace_field'\]"):
        ReleasedMapping.load({"trace_field": "x"})
    part = next((root / "traces/gsm8k").glob("*part01*"))
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    part.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] != records[0]["id"]))
    with pytest.raises(RBridgeError, match=r"id '0', field 'frontier_tokens': the token texts"):
        read_released(root, "gsm8k")


def test_the_495_math500_traces_join_and_the_run_counts_the_questions_without_one(
    tmp_path, data_dir, caplog
):
    """As released: 495 MATH-500 traces for the 500 questions, under the real file names."""
    questions = load_questions("math500", data_dir)
    without = {q.id for q in questions[::100]}
    kept = [q for q in questions if q.id not in without]
    replies = {
        q.id: json.dumps({"reasoning": f"Work through problem {n}.", "final_answer": q.gold})
        for n, q in enumerate(kept)
    }
    completions = [
        {"unique_id": q.id, "problem": q.question, "response": replies[q.id]} for q in kept
    ]
    rows = [
        {"unique_id": i, "token": reply[k : k + 5], "logprob": -0.25}
        for i, reply in replies.items()
        for k in range(0, len(reply), 5)
    ]
    write_config(tmp_path, "math500", completions, rows)
    settings = TaskSettings.from_metadata(
        {"benchmark": "math500", "traces": str(tmp_path), "data_dir": str(data_dir)}
    )
    with caplog.at_level(logging.WARNING, logger="rbridge_tasks.harness.documents"):
        docs, provenance = build_documents(settings)
    assert (len(questions), len(without), len(docs)) == (500, 5, 495)
    assert [d["id"] for d in docs] == [q.id for q in kept]
    assert [d["trace"] for d in docs] == [f"Work through problem {n}." for n in range(495)]
    assert provenance["pack_documents"] == 495 and provenance["benchmark_questions"] == 500
    assert provenance["questions_without_trace"] == 5
    assert caplog.messages == [
        f"math500: 5 of the 500 questions have no trace in {tmp_path.resolve()} (released "
        "traces); they are not scored"
    ]
