"""`validate` and `stats`: checks, warnings, coverage and numbers recomputed independently."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rbridge_tasks.cli import main as rbridge_main
from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import write_traces
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.stats import summarise
from rbridge_tasks.traces.validate import validate_pack

LOGPROBS = [[-0.01, -2.5, 0.0, -0.3], [-1.2, -1.2], [-0.05, -4.0, -0.7]]


@pytest.fixture()
def records(data_dir) -> list[TraceRecord]:
    questions = load_questions("gsm8k", data_dir)
    out = []
    for q, logprobs in zip(questions, LOGPROBS, strict=False):
        texts = [f"w{i} " for i in range(len(logprobs) - 1)] + ["end."]
        out.append(
            TraceRecord(
                id=q.id,
                benchmark="gsm8k",
                question=q.question,
                trace="".join(texts),
                frontier_model="m",
                token_texts=tuple(texts),
                token_logprobs=tuple(logprobs),
                answer=q.gold,
                correct=q.id != "1",
                meta={"trace_author_model": "author"},
            )
        )
    return out


def test_stats_match_an_independent_computation(records):
    s = summarise(records)
    flat = np.array([lp for lps in LOGPROBS for lp in lps])
    probabilities = np.exp(flat)
    assert s["records"] == s["with_tokens"] == s["with_answer"] == s["with_correct"] == 3
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["confidence"]["tokens"] == flat.size
    assert s["confidence"]["mean"] == pytest.approx(probabilities.mean(), rel=1e-12)
    assert s["confidence"]["median"] == pytest.approx(np.median(probabilities), rel=1e-12)
    assert s["confidence"]["share_certain"] == pytest.approx((probabilities >= 0.9).mean())
    assert s["confidence"]["mean_logprob"] == pytest.approx(flat.mean(), rel=1e-12)
    assert s["confidence"]["min_logprob"] == flat.min()
    lengths = np.array([len(r.trace) for r in records])
    assert s["trace_chars"] == pytest.approx(
        {
            "min": lengths.min(),
            "median": np.median(lengths),
            "mean": lengths.mean(),
            "max": lengths.max(),
        }
    )
    assert s["tokens_per_trace"]["mean"] == pytest.approx(np.mean([len(x) for x in LOGPROBS]))
    assert s["constant_confidence_traces"] == 1  # [-1.2, -1.2]: MinMax weights are all 1
    assert s["trace_authors"] == {"author": 3} and s["frontier_models"] == {"m": 3}


def test_a_good_pack_validates_with_its_coverage(records, data_dir, tmp_path, capsys):
    path = tmp_path / "pack.jsonl"
    write_traces(path, records)
    report = validate_pack(path, data_dir=data_dir)
    (gsm8k,) = report.benchmarks
    assert gsm8k.coverage == pytest.approx(3 / 1319)
    assert gsm8k.warnings == {}
    assert traces_main(["validate", str(path), "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert "gsm8k: 3 trace(s) for 1319 questions (coverage 0.23%)" in printed
    assert printed.rstrip().endswith(f"OK: {path} is a valid trace pack")
    assert (
        traces_main(
            ["validate", str(path), "--data-dir", str(data_dir), "--min-coverage", "0.5", "--json"]
        )
        == 1
    )
    report_json = json.loads(capsys.readouterr().out)
    assert report_json["failures"] == ["gsm8k: coverage 0.23% is below --min-coverage 50.00%"]
    assert report_json["benchmarks"]["gsm8k"]["stats"]["records"] == 3


def test_warnings_list_the_records_and_fail_under_strict(records, data_dir, tmp_path, capsys):
    path = tmp_path / "pack.jsonl"
    answer_left = replace(
        records[0],
        trace="w0 \nThe answer is 18.",
        token_texts=("w0 \n", "The answer is 18."),
        token_logprobs=(-1.0, 0.0),
    )
    write_traces(
        path, [answer_left, replace(records[1], question="Another question?", answer=None)]
    )
    (report,) = validate_pack(path, data_dir=data_dir).benchmarks
    assert report.warnings == {
        "trace still ends with a final-answer line": ["0"],
        "question text differs from the benchmark's": ["1"],
        "no answer": ["1"],
    }
    assert traces_main(["validate", str(path), "--data-dir", str(data_dir)]) == 0
    argv = ["validate", str(path), "--data-dir", str(data_dir), "--strict", "--min-coverage", "0"]
    assert traces_main(argv) == 1
    assert "FAILED: 3 warning(s) under --strict" in capsys.readouterr().out


def test_a_pack_covering_few_questions_is_a_warning(data_dir, tmp_path, capsys):
    """100 of CommonsenseQA's 1221 validation questions (8%): --strict fails on it unless
    --min-coverage sets a bar of the user's own."""
    questions = load_questions("csqa", data_dir)[:100]
    path = tmp_path / "csqa.jsonl"
    write_traces(
        path,
        [
            TraceRecord(
                id=q.id, benchmark="csqa", question=q.question, trace="Think it over.",
                frontier_model="m", token_texts=("Think", " it over."),
                token_logprobs=(-0.5, -0.1), answer=q.gold, correct=True,
            )
            for q in questions
        ],
    )  # fmt: skip
    (report,) = validate_pack(path, data_dir=data_dir).benchmarks
    assert (report.questions, report.warnings, report.low_coverage) == (1221, {}, True)
    base = ["validate", str(path), "--data-dir", str(data_dir)]
    assert traces_main([*base, "--strict"]) == 1
    printed = capsys.readouterr().out
    assert "csqa: 100 trace(s) for 1221 questions (coverage 8.19%)" in printed
    assert (
        "  warning: coverage 8.19% is below 25% of the benchmark's questions (pass "
        "--min-coverage F to set your own bar)"
    ) in printed
    assert printed.rstrip().endswith("FAILED: 1 warning(s) under --strict")
    assert traces_main(base) == 0  # a warning, not an error
    assert "warning: coverage 8.19%" in capsys.readouterr().out
    assert traces_main([*base, "--strict", "--min-coverage", "0.05"]) == 0
    assert "warning" not in capsys.readouterr().out
    assert traces_main([*base, "--min-coverage", "0.1", "--json"]) == 1
    report_json = json.loads(capsys.readouterr().out)
    assert report_json["failures"] == ["csqa: coverage 8.19% is below --min-coverage 10.00%"]
    assert report_json["benchmarks"]["csqa"]["low_coverage"] is True


def test_errors_name_file_record_and_field(records, data_dir, tmp_path):
    stray = tmp_path / "stray.jsonl"
    write_traces(stray, [replace(records[0], id="99999")])
    with pytest.raises(
        RBridgeError,
        match=r"stray.jsonl, id '99999', field 'id': not a gsm8k "
        r"question id",
    ):
        validate_pack(stray, data_dir=data_dir)
    text_only = tmp_path / "text.jsonl"
    write_traces(text_only, [replace(records[0], token_texts=(), token_logprobs=())])
    with pytest.raises(
        RBridgeError,
        match=r"text.jsonl, line 1, id '0', field "
        r"'frontier_tokens': missing",
    ):
        validate_pack(text_only, data_dir=data_dir)
    assert (
        validate_pack(text_only, data_dir=data_dir, text_only=True)
        .benchmarks[0]
        .stats["with_tokens"]
        == 0
    )
    mismatch = tmp_path / "mismatch.jsonl"
    row = records[0].to_json()
    row["frontier_tokens"][1]["text"] = "W1 "
    mismatch.write_text(json.dumps(row) + "\n")
    with pytest.raises(
        RBridgeError,
        match=r"mismatch.jsonl, line 1, id '0', field "
        r"'frontier_tokens': the token texts concatenate",
    ):
        validate_pack(mismatch, data_dir=data_dir)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RBridgeError, match="no trace records"):
        validate_pack(empty, data_dir=data_dir)


def test_rbridge_command_turns_errors_into_one_line(records, data_dir, tmp_path, capsys):
    stray = tmp_path / "stray.jsonl"
    write_traces(stray, [replace(records[0], id="99999")])
    assert rbridge_main(["traces", "validate", str(stray), "--data-dir", str(data_dir)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"rbridge traces: error: {stray}, id '99999', field 'id'")


def test_stats_command(records, tmp_path, capsys):
    path = tmp_path / "pack.jsonl"
    write_traces(path, records)
    assert traces_main(["stats", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[str(path)]["gsm8k"] == json.loads(
        json.dumps(summarise(records))
    )
    assert traces_main(["stats", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "records: 3 (with frontier tokens: 3, with answer: 3, judged: 3)" in printed
    assert "accuracy of judged answers: 0.6667" in printed
    assert "traces with constant confidence: 1" in printed
