"""Trace packs under hostile conditions: one rule for every reader, and job writers that never
lose or mix data (a file that is not a trace pack, a torn or unterminated last line, a record a
backend got wrong, a resumed run with other settings, a pack mixing models, folders)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers import run_main

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import TraceAppender, read_pack, read_traces, write_traces
from rbridge_tasks.records.schema import TraceRecord
from rbridge_tasks.traces.validate import validate_pack


@pytest.fixture()
def records(data_dir) -> list[TraceRecord]:
    out = []
    for q in load_questions("gsm8k", data_dir)[:3]:
        texts = ("Half of it ", "is ", f"{q.gold}.")
        out.append(
            TraceRecord(
                id=q.id,
                benchmark="gsm8k",
                question=q.question,
                trace="".join(texts),
                frontier_model="m",
                token_texts=texts,
                token_logprobs=(-0.25, -1.5, 0.0),
                answer=q.gold,
                correct=True,
            )
        )
    return out


def line_of(record: TraceRecord) -> bytes:
    return json.dumps(record.to_json(), ensure_ascii=False).encode() + b"\n"


def test_a_lone_surrogate_fails_validate_and_every_reader_alike(
    tmp_path, records, data_dir, capsys
):
    path = tmp_path / "t.jsonl"
    bad = replace(records[1], trace="Half of it \ud800", token_texts=("Half of it ", "\ud800"))
    bad = replace(bad, token_logprobs=(-0.25, -1.5))
    path.write_bytes(
        line_of(records[0]) + json.dumps(bad.to_json()).encode() + b"\n"  # \ud800 as an escape
    )
    expected = f"{path}, line 2, id '{bad.id}', field 'trace': holds a lone surrogate '\\\\ud800'"
    code, _, err = run_main(capsys, "traces", "validate", str(path), "--data-dir", str(data_dir))
    assert code == 2 and expected in err, err
    with pytest.raises(RBridgeError) as caught:
        read_traces(path)  # what `rbridge eval` and `confidences` read through
    assert expected in str(caught.value)
    question = replace(records[0], question="What is \udfff?")
    path.write_bytes(json.dumps(question.to_json()).encode() + b"\n")
    with pytest.raises(RBridgeError, match=r"line 1, id '0', field 'question': holds a lone"):
        read_traces(path)


def test_an_output_that_is_not_a_trace_file_is_left_untouched(tmp_path, records):
    for text in (b"notes about the run\nno final newline", b"a single line"):
        path = tmp_path / "notes.jsonl"
        path.write_bytes(text)
        with pytest.raises(RBridgeError, match=r"notes.jsonl, line 1: invalid JSON|left untouched"):
            TraceAppender(path)
        assert path.read_bytes() == text
    path.write_bytes(line_of(records[0]) + b'{"id": "x", "benchmark": "gsm8k", "oops": 1}')
    before = path.read_bytes()
    with pytest.raises(RBridgeError, match=r"line 2, id 'x': missing required field"):
        TraceAppender(path)  # a complete last line that is no record: refused, not "repaired"
    assert path.read_bytes() == before


def test_a_whole_file_write_refuses_an_output_a_job_is_appending_to(tmp_path, records):
    path = tmp_path / "t.jsonl"
    with TraceAppender(path) as appender:
        appender.append(records[0])
        with pytest.raises(RBridgeError, match=r"t.jsonl: another process is writing this file"):
            write_traces(path, records)
    write_traces(path, records)  # once the job is done
    assert [r.id for r in read_traces(path)] == [r.id for r in records]


def test_a_torn_record_is_cut_and_a_complete_last_record_is_kept(tmp_path, records):
    path = tmp_path / "t.jsonl"
    whole = line_of(records[0]) + line_of(records[1])
    path.write_bytes(whole + line_of(records[2])[:37])  # died mid-write
    with TraceAppender(path) as appender:
        assert appender.done_ids == {("gsm8k", records[0].id), ("gsm8k", records[1].id)}
    assert path.read_bytes() == whole
    path.write_bytes(whole[:-1])  # a complete record without its newline: nothing is lost
    with TraceAppender(path) as appender:
        assert len(appender.done_ids) == 2
        appender.append(records[2])
    assert path.read_bytes() == whole + line_of(records[2])


@pytest.mark.parametrize(
    ("logprobs", "message"),
    [
        ((-0.25, 0.5, 0.0), r"frontier_tokens\[1\].logprob': is 0.5, a positive"),
        ((-0.25, float("nan"), 0.0), r"frontier_tokens\[1\].logprob': is NaN"),
        ((float("-inf"), -1.0, 0.0), r"frontier_tokens\[0\].logprob': is -inf"),
    ],
)
def test_a_bad_record_from_a_backend_is_refused_before_it_is_written(
    tmp_path, records, logprobs, message
):
    path = tmp_path / "t.jsonl"
    with TraceAppender(path) as appender:
        appender.append(records[0])
        with pytest.raises(RBridgeError, match=rf"new record for {path}, id '1', field '{message}"):
            appender.append(replace(records[1], token_logprobs=logprobs))
        with pytest.raises(RBridgeError, match=r"field 'meta': holds a lone surrogate"):
            appender.append(replace(records[1], meta={"note": "\udc80"}))
        appender.append(records[2])
    assert [r.id for r in read_traces(path)] == [records[0].id, records[2].id]


def test_a_resumed_job_with_other_settings_is_refused(tmp_path, records):
    path = tmp_path / "t.jsonl"
    settings = {"frontier_model": "m", "max_new_tokens": 512, "stops": ("\nQuestion:",)}
    with TraceAppender(path, settings=("generation_settings", settings)) as appender:
        appender.append(records[0])
    stored = read_traces(path)[0].meta["generation_settings"]
    assert stored == {"frontier_model": "m", "max_new_tokens": 512, "stops": ["\nQuestion:"]}
    with TraceAppender(path, settings=("generation_settings", settings)) as appender:
        appender.append(records[1])  # the same settings resume
    before = path.read_bytes()
    other = {**settings, "max_new_tokens": 1024}
    with pytest.raises(
        RBridgeError,
        match=r"t.jsonl, id '0', field 'meta.generation_settings': was written with other "
        r"settings \(max_new_tokens=512 there, 1024 now\)",
    ):
        TraceAppender(path, settings=("generation_settings", other))
    assert path.read_bytes() == before


def test_validate_warns_on_a_pack_mixing_models(tmp_path, records, data_dir, capsys):
    path = tmp_path / "t.jsonl"
    write_traces(path, [records[0], replace(records[1], frontier_model="other"), records[2]])
    report = validate_pack(path, data_dir=data_dir)
    (problem,) = [p for p in report.benchmarks[0].warnings if "mixed models" in p]
    assert report.benchmarks[0].warnings[problem] == [records[1].id]
    assert "'m'" in problem
    code, out, _ = run_main(
        capsys, "traces", "validate", str(path), "--data-dir", str(data_dir), "--strict"
    )
    assert code == 1 and "(mixed models): 1 record(s), e.g. ids ['1']" in out


def test_validate_and_stats_read_the_folder_layout_eval_reads(tmp_path, records, data_dir, capsys):
    folder = tmp_path / "traces"
    folder.mkdir()
    write_traces(folder / "gsm8k.jsonl.gz", records[:2])
    # a record of another benchmark in gsm8k's file is skipped, as `rbridge eval` skips it
    arc = load_questions("arc_challenge", data_dir)[0]
    stray = replace(records[2], id=arc.id, benchmark="arc_challenge", question=arc.question)
    write_traces(folder / "math500.jsonl", [stray])
    assert [r.id for r in read_pack(folder)] == [r.id for r in records[:2]]
    code, out, err = run_main(
        capsys, "traces", "validate", str(folder), "--data-dir", str(data_dir)
    )
    assert code == 0, err
    assert out.startswith("gsm8k: 2 trace(s)") and "math500" not in out
    code, out, _ = run_main(capsys, "traces", "stats", str(folder), "--json")
    assert code == 0 and list(json.loads(out)[str(folder)]) == ["gsm8k"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_main(capsys, "traces", "stats", str(empty))
    assert code == 2 and f"{empty}: a folder of traces must hold <benchmark>.jsonl" in err
