"""`rbridge traces generate` as a long job under faults, against the real local OpenAI-compatible
server: two writers on one output, a full disk, a resumed run with other settings, a server
that asks to wait an hour, and one that trickles its answer a byte at a time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from hardening_mounts import PAGE, fill, tmpfs
from memorised_model import COMPLETIONS

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.backend_openai import OpenAICompatibleBackend, RetryPolicy
from rbridge_tasks.traces.generate import SKIPPED_SUFFIX, generate_traces

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
