"""Hostile input files: every decompression, decoding, depth and size fault is one located error.

Each fault goes through the shared readers (`jsonl.iter_jsonl` for trace files, `jsonl.read_json`
for results and fit files) by the command line, which must exit 2 with one line naming the file
and line, and no traceback.
"""

from __future__ import annotations

import gzip
import json
import os

import pytest
from helpers import run_main

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.jsonl import iter_jsonl, read_json
from rbridge_tasks.records.files import read_traces


def record(i: int, **overrides) -> dict:
    base = {
        "id": str(i),
        "benchmark": "gsm8k",
        "question": f"question {i}?",
        "trace": "Two plus two is four.",
        "frontier_model": "m",
        "frontier_tokens": [
            {"text": "Two plus two", "logprob": -0.5},
            {"text": " is four.", "logprob": -0.1},
        ],
    }
    return {**base, **overrides}


def lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


GOOD = lines(record(0), record(1), record(2))


def truncated_gzip() -> bytes:
    data = gzip.compress(GOOD * 50)
    return data[: len(data) // 2]


def corrupt_gzip() -> bytes:
    data = bytearray(gzip.compress(GOOD))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


# (file name, bytes, expected message, line named in it)
FAULTS = {
    "truncated-gzip": ("t.jsonl.gz", truncated_gzip(), "gzip data is truncated", None),
    "corrupt-gzip": ("t.jsonl.gz", corrupt_gzip(), "cannot decompress", None),
    "invalid-utf8": (
        "t.jsonl",
        lines(record(0)) + b'{"id": "1", "question": "caf\xe9"}\n',
        "not valid UTF-8",
        2,
    ),
    "deep-nesting": (
        "t.jsonl",
        lines(record(0)) + b'{"id": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
        "nested too deeply",
        2,
    ),
    "5000-digit-integer": (
        "t.jsonl",
        lines(record(0)) + b'{"id": ' + b"7" * 5000 + b"}\n",
        "integer too long",
        2,
    ),
    "syntax": ("t.jsonl", lines(record(0)) + b'{"id": "1",\n', "invalid JSON", 2),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_trace_file_faults_are_one_located_error(tmp_path, capsys, fault):
    name, data, message, line = FAULTS[fault]
    path = tmp_path / name
    path.write_bytes(data)
    code, _, err = run_main(capsys, "traces", "stats", str(path))
    assert code == 2, err
    assert err.startswith(f"rbridge traces: error: {path}") and message in err, err
    if line is not None:
        assert f"{path}, line {line}:" in err
    else:  # a decompression fault names the line being read when the data ran out
        assert ", line " in err
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == data  # a reader never touches its input


RESULTS = json.dumps({"results": {"t": {"acc,none": 0.5}}}).encode()
# whole-file faults of a results file: (bytes, expected message)
RESULTS_FAULTS = {
    "truncated-gzip": (gzip.compress(RESULTS * 1)[:20], "gzip data is truncated"),
    "corrupt-gzip": (corrupt_gzip(), "cannot decompress"),
    "invalid-utf8": (b'{"results":\n {"caf\xe9": 1}}', "line 2: not valid UTF-8"),
    "deep-nesting": (b'{"results": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
    "5000-digit-integer": (
        b'{"results": {"t": {"acc,none": ' + b"7" * 5000 + b"}}}",
        "integer too long",
    ),
    "syntax": (b'{"results":\n {"t": ', "line 2: not valid JSON (Expecting value"),
}


@pytest.mark.parametrize("fault", sorted(RESULTS_FAULTS))
def test_results_file_faults_are_one_located_error(tmp_path, capsys, fault):
    """`rbridge predict` reads results files through the same hardened reader."""
    data, message = RESULTS_FAULTS[fault]
    path = tmp_path / "results_x.json"
    path.write_bytes(data)
    code, _, err = run_main(
        capsys, "predict", "fit", "--results", str(path), "--proxy-task", "p",
        "--proxy-metric", "m", "--target-task", "t", "--target-metric", "acc",
    )  # fmt: skip
    assert code == 2, err
    assert err.startswith(f"rbridge predict: error: {path}") and message in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("compress", [True, False], ids=["gzip-named-jsonl", "text-named-gz"])
def test_the_content_not_the_name_says_whether_a_file_is_gzip(tmp_path, compress):
    path = tmp_path / ("t.jsonl" if compress else "t.jsonl.gz")
    path.write_bytes(gzip.compress(GOOD) if compress else GOOD)
    assert [r.id for r in read_traces(path)] == ["0", "1", "2"]
    assert [n for n, _ in iter_jsonl(path)] == [1, 2, 3]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_number_literals(tmp_path, literal):
    """Strict readers (benchmark files, results fits, released logprobs) refuse them by line;
    trace records read them so the error can name the record and field."""
    path = tmp_path / "t.jsonl"
    text = json.dumps(record(0)).replace("-0.5", literal)
    path.write_text(json.dumps(record(1)) + "\n" + text + "\n")
    with pytest.raises(RBridgeError, match=rf"t.jsonl, line 2: invalid JSON: {literal} is not"):
        list(iter_jsonl(path))
    with pytest.raises(
        RBridgeError,
        match=r"line 2, id '0', field 'frontier_tokens\[0\].logprob': is (NaN|inf|-inf); "
        "a log-probability must be a finite number",
    ):
        read_traces(path)


def test_a_folder_where_a_file_is_wanted(tmp_path, capsys):
    folder = tmp_path / "fit.json"
    folder.mkdir()
    with pytest.raises(RBridgeError, match=r"fit.json: is a folder; expected a file"):
        read_json(folder)
    with pytest.raises(RBridgeError, match=r"fit.json: is a folder; expected a file"):
        list(iter_jsonl(folder))
    code, _, err = run_main(
        capsys, "predict", "leaderboard", "--fit", str(folder), "--results", "."
    )
    assert code == 2 and f"{folder}: is a folder; expected a file" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    path.write_bytes(GOOD)
    path.chmod(0)
    code, _, err = run_main(capsys, "traces", "stats", str(path))
    assert code == 2 and f"{path}: cannot read the file: permission denied" in err


def test_a_utf8_bom_is_read(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD)
    assert [r.id for r in read_traces(path)] == ["0", "1", "2"]
    single = tmp_path / "r.json"
    single.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode())
    assert read_json(single) == {"a": 1}
