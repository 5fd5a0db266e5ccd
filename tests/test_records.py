"""Trace files: the schema validator's errors (file, line, id, field), atomic IO, and a record's
answer line stripped with its frontier tokens cut at the same character."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.answer_lines import strip_final_answer
from rbridge_tasks.records.files import TraceAppender, read_traces, write_traces
from rbridge_tasks.records.schema import parse_record


def good(**overrides) -> dict:
    rec = {
        "id": "3",
        "benchmark": "gsm8k",
        "question": "How many?",
        "trace": "Two plus two.",
        "frontier_model": "m",
        "frontier_tokens": [
            {"text": "Two", "logprob": -0.1},
            {"text": " plus two.", "logprob": -1.5},
        ],
    }
    rec.update(overrides)
    return rec


def write(tmp_path: Path, *records, raw: str | None = None) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"trace": "Two plus three."},
            r"line 1, id '3', field 'frontier_tokens': the token texts "
            r"concatenate .* differs from 'trace' .* at character 10",
        ),
        (
            {"frontier_tokens": [{"text": "Two plus two.", "logprob": math.nan}]},
            r"field 'frontier_tokens\[0\].logprob': is NaN",
        ),
        (
            {"frontier_tokens": [{"text": "Two plus two.", "logprob": 0.3}]},
            r"field 'frontier_tokens\[0\].logprob': is 0.3, a positive log-probability",
        ),
        (
            {"trace": "", "frontier_tokens": [{"text": "", "logprob": -1}]},
            r"field 'trace': must be a non-empty string",
        ),
        ({"trace": "  \n"}, r"field 'trace': must be a non-empty string"),
        ({"benchmark": "gsm/8k"}, r"field 'benchmark': must be a benchmark name \(one of \["),
        ({"benchmark": 8}, r"field 'benchmark': must be a benchmark name .*, got 8"),
        ({"frontier_tokens": []}, r"field 'frontier_tokens': must be a non-empty list"),
        (
            {"frontier_tokens": [{"text": "Two plus two."}]},
            r"'frontier_tokens\[0\]': must be an object",
        ),
        ({"frontier_tokens": [{"text": "Two plus two.", "logprob": "low"}]}, r"must be a number"),
        ({"correct": "yes"}, r"field 'correct': must be true or false"),
        ({"extra": 1}, r"unknown field\(s\) \['extra'\]; put free-form data under 'meta'"),
        ({"id": ""}, r"field 'id': must be a non-empty string"),
    ],
)
def test_bad_records_get_one_clear_error(tmp_path, overrides, message):
    path = write(tmp_path, good(**overrides))
    with pytest.raises(RBridgeError, match=message) as err:
        read_traces(path)
    assert str(path) in str(err.value)


def test_missing_required_field_and_text_only_trace(tmp_path):
    rec = good()
    del rec["frontier_model"]
    with pytest.raises(RBridgeError, match=r"missing required field\(s\) \['frontier_model'\]"):
        read_traces(write(tmp_path, rec))
    rec = good()
    del rec["frontier_tokens"]
    with pytest.raises(RBridgeError, match=r"text-only trace; add .* `rbridge traces confidences`"):
        read_traces(write(tmp_path, rec))
    assert not read_traces(write(tmp_path, rec), require_tokens=False)[0].has_tokens


def test_missing_file_invalid_json_and_duplicates(tmp_path):
    with pytest.raises(RBridgeError, match=r"traces file not found: .*nope\.jsonl"):
        read_traces(tmp_path / "nope.jsonl")
    with pytest.raises(RBridgeError, match=r"line 2: invalid JSON"):
        read_traces(write(tmp_path, raw=json.dumps(good()) + "\n{oops\n"))
    with pytest.raises(RBridgeError, match=r"line 2, id '3': duplicate record: .* on line 1"):
        read_traces(write(tmp_path, good(), good()))


def test_tiny_positive_rounding_is_read_as_zero():
    rec = parse_record(
        good(frontier_tokens=[{"text": "Two plus two.", "logprob": 5e-7}]), source="x"
    )
    assert rec.token_logprobs == (0.0,)


def test_write_read_round_trip_including_gzip(tmp_path):
    records = [parse_record(good(id=str(i), meta={"k": i}), source="x") for i in range(3)]
    for name in ("a.jsonl", "a.jsonl.gz"):
        write_traces(tmp_path / name, records)
        assert read_traces(tmp_path / name) == records
    assert not list(tmp_path.glob(".*.tmp"))


def test_appender_repairs_a_crashed_tail_and_resumes(tmp_path):
    path = tmp_path / "gen.jsonl"
    first = parse_record(good(id="1"), source="x")
    with TraceAppender(path) as out:
        out.append(first)
    with open(path, "a") as fh:  # a crash mid-write leaves half a line
        fh.write('{"id": "2", "bench')
    with TraceAppender(path) as out:
        assert out.done_ids == {("gsm8k", "1")}
        out.append(parse_record(good(id="2"), source="x"))
        with pytest.raises(RBridgeError, match="already there"):
            out.append(first)
    assert [r.id for r in read_traces(path)] == ["1", "2"]


def test_stripping_cuts_frontier_tokens_at_the_same_character():
    rec = parse_record(
        good(
            trace="Sum.\nThe answer is 4.",
            frontier_tokens=[
                {"text": "Sum", "logprob": -1.0},
                {"text": ".\nThe", "logprob": -2.0},
                {"text": " answer is 4.", "logprob": -0.5},
            ],
        ),
        source="x",
    )
    stripped = strip_final_answer(rec)
    assert stripped.trace == "Sum."
    assert stripped.token_texts == ("Sum", ".")
    assert stripped.token_logprobs == (-1.0, -2.0)
    assert stripped.meta["stripped_answer_text"] == "\nThe answer is 4."
    answer_only = parse_record(
        good(
            trace="The answer is 4.",
            frontier_tokens=[{"text": "The answer is 4.", "logprob": -1.0}],
        ),
        source="x",
    )
    assert strip_final_answer(answer_only) == answer_only  # left whole: nothing else to score
