"""The OpenAI-compatible backend against a real HTTP server serving the memorised tiny model,
and against no server at all (one line at once).

`rbridge traces generate` as a long job under faults against that server: two writers on one
output, a full disk, a resumed run with other settings, a server that asks to wait an hour, and
one that trickles its answer a byte at a time."""

from __future__ import annotations

import email.utils
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import PAGE, fill, tmpfs
from memorised_model import ANSWER_ONLY_ROWS, COMPLETIONS, CORRECT_ROWS
from trace_checks import assert_close, forward_logprobs, tokenizer_of

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.backend_openai import (
    OpenAICompatibleBackend,
    RetryPolicy,
    _retry_after_seconds,
)
from rbridge_tasks.traces.cli import INTERRUPTED
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.generate import SKIPPED_SUFFIX, generate_traces
from rbridge_tasks.traces.prompts import frontier_prompt

FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture()
def questions(data_dir):
    return load_questions("gsm8k", data_dir)[: len(COMPLETIONS)]


def backend(server, **kwargs) -> OpenAICompatibleBackend:
    options = {"max_new_tokens": 60, "concurrency": 1, "retry": FAST_RETRY, "timeout": 30.0}
    options.update(kwargs)
    return OpenAICompatibleBackend("memorised", server.base_url, **options)


def run(server, questions, out, **kwargs):
    return generate_traces(
        questions, backend(server, **kwargs), out, backend_label="openai", progress=False
    )


def files(path):
    skipped = path.with_name(path.name + SKIPPED_SUFFIX)
    return path.read_bytes(), skipped.read_bytes() if skipped.exists() else b""


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_records_carry_the_served_models_logprobs(
    openai_server, questions, memorised_dir, tmp_path, api
):
    out = tmp_path / "traces.jsonl"
    summary = run(
        openai_server,
        questions,
        out,
        api=api,
        concurrency=2,
        stop=("\nQuestion:",) if api == "completions" else (),
    )
    assert summary.correct == len(CORRECT_ROWS)
    records = {r.id: r for r in read_traces(out)}
    assert sorted(records) == sorted(str(i) for i in COMPLETIONS if i not in ANSWER_ONLY_ROWS)
    tokenizer = tokenizer_of(memorised_dir)
    for row, record in records.items():
        completion = COMPLETIONS[int(row)]
        assert record.meta["completion"] == completion
        assert record.trace == completion.rpartition("\n")[0].strip()
        assert record.correct is (int(row) in CORRECT_ROWS)
        prompt = frontier_prompt(questions[int(row)])
        assert record.meta["prompt"] == (prompt.user if api == "chat" else prompt.completion)
        # the served tokens are the memorised ones; the trace keeps the first len(tokens)
        ids = tokenizer(completion, add_special_tokens=False).input_ids
        expected = forward_logprobs(memorised_dir, tokenizer(prompt.completion).input_ids, ids)
        assert_close(list(record.token_logprobs), expected[: len(record.token_logprobs)])
    assert {path for path, _, _ in openai_server.requests} == {
        "/v1/chat/completions" if api == "chat" else "/v1/completions"
    }


def test_dropped_connection_then_resume_gives_the_same_files(openai_server, questions, tmp_path):
    whole = tmp_path / "whole.jsonl"
    run(openai_server, questions, whole)
    openai_server.requests.clear()
    openai_server.faults.drop = {3}
    resumed = tmp_path / "resumed.jsonl"
    with pytest.raises(
        RBridgeError,
        match=r"giving up after 0 retries; last error: "
        r"RemoteDisconnected",
    ):
        run(openai_server, questions, resumed, retry=RetryPolicy(max_retries=0))
    assert [r.id for r in read_traces(resumed)] == ["0", "1"]
    summary = run(openai_server, questions, resumed, retry=RetryPolicy(max_retries=0))
    assert summary.already_done == 2 and summary.written == 1
    assert files(resumed) == files(whole)
    assert [status for _, status, _ in openai_server.requests] == [200, 200, -1, 200, 200]


def test_dropped_connection_is_retried(openai_server, questions, tmp_path):
    whole = tmp_path / "whole.jsonl"
    run(openai_server, questions, whole)
    openai_server.requests.clear()
    openai_server.faults.drop = {2}
    retried = tmp_path / "retried.jsonl"
    run(openai_server, questions, retried)
    assert files(retried) == files(whole)
    assert [status for _, status, _ in openai_server.requests] == [200, -1, 200, 200, 200]


def test_rate_limit_waits_for_retry_after(openai_server, questions, tmp_path):
    openai_server.faults.rate_limit = {1: "1", 2: "0.5"}
    out = tmp_path / "traces.jsonl"
    # backoff alone would retry after 0.01 s; the cap (5 s) is above what the server asks
    run(openai_server, questions[:1], out, retry=RetryPolicy(3, backoff_base=0.01, backoff_cap=5.0))
    (first, second, third) = openai_server.requests
    assert [first[1], second[1], third[1]] == [429, 429, 200]
    assert second[2] - first[2] >= 1.0
    assert third[2] - second[2] >= 0.5
    assert [r.id for r in read_traces(out)] == ["0"]


def test_server_errors_back_off_exponentially_then_give_up(openai_server, questions, tmp_path):
    openai_server.faults.unavailable = {1, 2, 3}
    retry = RetryPolicy(max_retries=2, backoff_base=0.2, backoff_cap=10.0)
    with pytest.raises(RBridgeError, match=r"giving up after 2 retries; last error: HTTP 503"):
        run(openai_server, questions[:1], tmp_path / "t.jsonl", retry=retry)
    times = [t for _, _, t in openai_server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4


def test_backoff_delays_double_up_to_the_cap_and_retry_after_wins():
    policy = RetryPolicy(max_retries=9, backoff_base=0.5, backoff_cap=3.0)
    assert [policy.delay(i, None) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, 2.5) == 2.5
    assert policy.delay(4, 120.0) == 3.0  # capped too (the backend warns)
    assert policy.delay(0, -1.0) == 0.0  # an HTTP date already past


def test_client_side_request_budget_spaces_requests(openai_server, questions, tmp_path):
    run(openai_server, questions[:3], tmp_path / "t.jsonl", requests_per_minute=120)
    times = [t for _, _, t in openai_server.requests]
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(times))


def test_concurrent_requests_still_write_in_question_order(openai_server, questions, tmp_path):
    serial, parallel = tmp_path / "serial.jsonl", tmp_path / "parallel.jsonl"
    run(openai_server, questions, serial)
    openai_server.faults.stall = {5: 0.5}  # the first request of the parallel run is slowest
    run(openai_server, questions, parallel, concurrency=4)
    assert files(parallel) == files(serial)


def test_errors_that_retrying_cannot_fix(openai_server, questions, tmp_path):
    wrong_path = OpenAICompatibleBackend("m", openai_server.base_url + "/nope", retry=FAST_RETRY)
    with pytest.raises(RBridgeError, match=r"question '0': HTTP 404"):
        generate_traces(
            questions[:1], wrong_path, tmp_path / "a.jsonl", backend_label="openai", progress=False
        )
    openai_server.faults.omit_logprobs = True
    with pytest.raises(RBridgeError, match=r"question '0': the response lacks 'logprobs.content'"):
        run(openai_server, questions[:1], tmp_path / "b.jsonl")
    assert len(openai_server.requests) == 2  # one each, no retries


def test_ctrl_c_keeps_finished_records_and_the_rerun_completes_the_file(
    openai_server, questions, data_dir, tmp_path
):
    whole = tmp_path / "whole.jsonl"
    run(openai_server, questions, whole)
    openai_server.requests.clear()
    openai_server.faults.stall = {3: 60.0}
    out = tmp_path / "interrupted.jsonl"
    command = [
        sys.executable,
        "-m",
        "rbridge_tasks.cli",
        "traces",
        "generate",
        "--benchmark",
        "gsm8k",
        "--backend",
        "openai",
        "--model",
        "memorised",
        "--base-url",
        openai_server.base_url,
        "--data-dir",
        str(data_dir),
        "--limit",
        str(len(questions)),
        "--max-new-tokens",
        "60",
        "--concurrency",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OPENAI_API_KEY": ""}
    )

    def written() -> int:
        return len(out.read_bytes().splitlines()) if out.exists() else 0

    # the worker sends request 3 as soon as answer 2 is in, maybe before record 1 is written:
    # interrupt once both the stall is reached and the two finished records are on disk
    deadline = time.monotonic() + 60
    while (len(openai_server.requests) < 3 or written() < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(openai_server.requests) == 3, "the run never reached the stalled request"
    assert written() == 2, "the two finished records were never written"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == INTERRUPTED, stderr
    assert "interrupted" in stderr and "run the same command again to resume" in stderr
    assert [r.id for r in read_traces(out)] == ["0", "1"]
    openai_server.faults.stall = {}
    run(openai_server, questions, out)
    assert files(out) == files(whole)


def test_retry_after_as_seconds_or_http_date():
    assert _retry_after_seconds("2.5") == 2.5
    in_ten_seconds = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= _retry_after_seconds(in_ten_seconds) <= 10.0
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds(None) is None


def test_the_openai_api_without_a_key_is_a_clear_error(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RBridgeError, match=r"the OpenAI API needs a key: set \$OPENAI_API_KEY"):
        traces_main(
            [
                "generate",
                "--benchmark",
                "gsm8k",
                "--backend",
                "openai",
                "--model",
                "gpt-4o",
                "--data-dir",
                str(data_dir),
                "--out",
                str(tmp_path / "t.jsonl"),
            ]
        )


def test_unreachable_api_server_fails_at_once(data_dir, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends
    out = tmp_path / "gen.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "traces", "generate", "--benchmark",
         "gsm8k", "--backend", "openai", "--model", "m", "--base-url",
         f"http://127.0.0.1:{port}/v1", "--data-dir", str(data_dir), "--limit", "2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot connect to 127.0.0.1:{port}" in lines[0]
    assert not out.exists()


def command(server, data_dir, out, n) -> list[str]:
    return [
        sys.executable, "-m", "rbridge_tasks.cli", "traces", "generate",
        "--benchmark", "gsm8k", "--backend", "openai", "--model", "memorised",
        "--base-url", server.base_url, "--data-dir", str(data_dir), "--limit", str(n),
        "--max-new-tokens", "60", "--concurrency", "1", "--no-progress", "--out", str(out),
    ]  # fmt: skip


ENV = {**os.environ, "OPENAI_API_KEY": ""}


def test_a_second_writer_fails_clearly_and_the_first_file_validates(
    openai_server, questions, data_dir, tmp_path
):
    whole = tmp_path / "whole.jsonl"
    run(openai_server, questions, whole)
    openai_server.requests.clear()
    release = threading.Event()
    openai_server.faults.hold = {2: release}  # the first writer waits mid-run, holding the lock
    out = tmp_path / "out.jsonl"
    first = subprocess.Popen(
        command(openai_server, data_dir, out, len(questions)),
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 120
        while len(openai_server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(openai_server.requests) == 2, "the first writer never reached request 2"
        second = subprocess.run(
            command(openai_server, data_dir, out, len(questions)),
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
    finally:
        release.set()
        _, first_err = first.communicate(timeout=120)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"rbridge traces: error: {out}: another process is writing this file (it holds its "
        "lock); wait for that job to finish, or write to another file"
    )
    assert first.returncode == 0, first_err
    assert len(openai_server.requests) == len(questions)  # the second asked the server nothing
    assert files(out) == files(whole)
    assert [r.id for r in read_traces(out)] == [r.id for r in read_traces(whole)]


def test_a_full_disk_keeps_every_finished_record_and_the_rerun_completes_it(
    openai_server, questions, data_dir, tmp_path
):
    whole = tmp_path / "whole.jsonl"
    run(openai_server, questions, whole)
    with tmpfs(tmp_path / "disk") as disk:
        filler = fill(disk, leave_pages=max(1, len(whole.read_bytes()) // 2 // PAGE))
        out = disk / "out.jsonl"
        failed = subprocess.run(
            command(openai_server, data_dir, out, len(questions)),
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
        )
        assert failed.returncode == 2, failed.stderr
        assert "Traceback" not in failed.stderr
        assert failed.stderr.startswith(f"rbridge traces: error: {out}")
        assert "No space left on device (the disk is full; free space and run again" in (
            failed.stderr
        )
        kept = out.read_bytes()
        assert whole.read_bytes().startswith(kept) and kept.endswith(b"\n")  # whole lines only
        assert len(read_traces(out)) == kept.count(b"\n") >= 1
        filler.unlink()
        done = subprocess.run(
            command(openai_server, data_dir, out, len(questions)),
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert files(out) == files(whole)


def test_resuming_with_another_max_new_tokens_is_refused(openai_server, questions, tmp_path):
    out = tmp_path / "t.jsonl"
    run(openai_server, questions[:2], out)
    before = out.read_bytes()
    with pytest.raises(
        RBridgeError,
        match=r"t.jsonl, id '0', field 'meta.generation_settings': was written with other "
        r"settings \(max_new_tokens=60 there, 30 now\)",
    ):
        run(openai_server, questions, out, max_new_tokens=30)
    assert out.read_bytes() == before
    assert read_traces(out)[0].meta["generation_settings"] == {
        "backend": "openai",
        "frontier_model": "memorised",
        "max_new_tokens": 60,
        "stops": [],
        "api": "chat",
    }


def test_retry_after_is_capped_by_the_backoff_cap_and_says_so(
    openai_server, questions, tmp_path, caplog
):
    openai_server.faults.rate_limit = {1: "3600"}
    out = tmp_path / "t.jsonl"
    retry = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.2)
    with caplog.at_level(logging.WARNING, logger="rbridge_tasks.traces.backend_openai"):
        run(openai_server, questions[:1], out, retry=retry)
    assert [status for _, status, _ in openai_server.requests] == [429, 200]
    assert (
        f"{openai_server.base_url}/chat/completions: question '0': the server asks to wait "
        "3600 s (Retry-After); waiting --backoff-cap 0.2 s instead"
    ) in caplog.text
    assert [r.id for r in read_traces(out)] == ["0"]
    assert RetryPolicy(backoff_cap=5.0).delay(0, 3600.0) == 5.0


def test_timeout_bounds_the_whole_request_not_each_read(openai_server, questions, tmp_path):
    """The server sends a byte every 0.2 s forever: no read ever waits a second, but the
    request must end at --timeout."""
    openai_server.faults.trickle = {1: 0.2, 2: 0.2}
    retry = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_cap=0.05)
    with pytest.raises(
        RBridgeError,
        match=r"question '0': giving up after 1 retries; last error: no complete response "
        r"within --timeout 1 s",
    ):
        run(openai_server, questions[:1], tmp_path / "t.jsonl", retry=retry, timeout=1.0)
    assert [status for _, status, _ in openai_server.requests] == [200, 200]
    openai_server.requests.clear()
    openai_server.faults.trickle = {1: 0.2}  # a retry after the deadline gets the answer
    out = tmp_path / "retried.jsonl"
    run(openai_server, questions[:1], out, retry=retry, timeout=1.0)
    assert [r.id for r in read_traces(out)] == ["0"]
