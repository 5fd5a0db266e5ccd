"""First-run fixes of `rbridge traces`: over-long traces, answer lines in every importer format,
nested/id-less JSONL, the `--data-dir` flag named in errors, file modes, an unreachable server.

Real GPT-4o-mini GSM8K traces and GSM8K questions; confidences and generations from the tiny
session models (a lowered `max_length` plays the short context).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.hub import OFFLINE_VARIABLES
from rbridge_tasks.core.jsonl import iter_jsonl
from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import read_traces, write_traces
from rbridge_tasks.traces import backend_hf
from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.confidences import add_confidences
from rbridge_tasks.traces.generate import TOO_LONG, generate_traces
from rbridge_tasks.traces.importers import import_text_traces
from rbridge_tasks.traces.prompts import frontier_prompt

# One trace ending per answer-line format the importers meet.
ANSWER_LINES = {
    "few-shot": "\nA: 18",
    "zero_shot_cot": "\nTherefore, the answer (arabic numerals) is 18.",
    "the-answer-is": "\nThe answer is 18.",
    "final-answer": "\nFinal Answer: The final answer is $18$. I hope it is correct.",
    "boxed": "\nSo she makes \\(\\boxed{18}\\) dollars.",
}


@pytest.fixture()
def text_pack(data_dir, tmp_path):
    source = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    records = import_text_traces("rereading", source, data_dir=data_dir).records[:4]
    path = tmp_path / "gsm8k-text.jsonl"
    write_traces(path, records)
    return path


def hf(model_dir, **kwargs) -> HFModel:
    return HFModel(str(model_dir), model_name="tiny", dtype="float32", device="cpu", **kwargs)


def needed_tokens(model: HFModel, prompt, trace: str | None) -> int:
    """Prompt plus trace (or plus the new tokens), counted here with the tokenizer itself."""
    prompt_ids = model.tokenizer(prompt.completion).input_ids
    if trace is None:
        return len(prompt_ids) + model.max_new_tokens
    return len(prompt_ids) + len(model.tokenizer(trace, add_special_tokens=False).input_ids)


def test_confidences_skip_too_long_lists_them_and_goes_on(gpt2_dir, data_dir, text_pack, tmp_path):
    model = hf(gpt2_dir, batch_size=2)
    records = read_traces(text_pack, require_tokens=False)
    questions = {q.id: q for q in load_questions("gsm8k", data_dir)}
    lengths = {
        r.id: needed_tokens(model, frontier_prompt(questions[r.id]), r.trace) for r in records
    }
    model.max_length = sorted(lengths.values())[1]  # two fit, two do not
    too_long = sorted(i for i, n in lengths.items() if n > model.max_length)
    assert len(too_long) == 2

    with pytest.raises(RBridgeError) as info:
        add_confidences(text_pack, tmp_path / "a.jsonl", model, data_dir=data_dir, progress=False)
    message = str(info.value)
    first = next(r.id for r in records if r.id in too_long)
    assert f"id {first!r}" in message and f"needs {lengths[first]} tokens" in message
    assert f"({model.max_length})" in message and "--skip-too-long" in message

    assert "; pass --skip-too-long to list such records in the skipped file" in message
    out = tmp_path / "b.jsonl"
    summary = add_confidences(
        text_pack, out, model, data_dir=data_dir, progress=False, skip_too_long=True
    )
    assert (summary.written, summary.already_done, summary.skipped) == (2, 0, {TOO_LONG: 2})
    kept = read_traces(out)
    assert sorted(r.id for r in kept) == sorted(set(lengths) - set(too_long))
    skipped = [entry for _, entry in iter_jsonl(tmp_path / "b.jsonl.skipped.jsonl")]
    assert sorted(e["id"] for e in skipped) == too_long
    assert all(e["reason"] == TOO_LONG for e in skipped)
    for entry in skipped:  # --skip-too-long was passed: the detail does not ask for it
        assert entry["detail"] == (
            f"{text_pack}, id {entry['id']!r}: needs {lengths[entry['id']]} tokens (prompt + "
            f"trace/new tokens), more than model 'tiny' handles ({model.max_length})"
        )
    # the kept traces are exactly what an unlimited model gives them
    model.max_length = None
    full = tmp_path / "c.jsonl"
    add_confidences(text_pack, full, model, data_dir=data_dir, progress=False)
    by_id = {r.id: r for r in read_traces(full)}
    for record in kept:  # batched without the skipped ones: padding may move the last bit
        assert record.token_texts == by_id[record.id].token_texts
        assert record.token_logprobs == pytest.approx(by_id[record.id].token_logprobs, abs=1e-5)


def test_generate_skip_too_long(gpt2_dir, data_dir, tmp_path):
    model = hf(gpt2_dir, batch_size=2, max_new_tokens=4)
    questions = load_questions("gsm8k", data_dir)[:4]
    lengths = {q.id: needed_tokens(model, frontier_prompt(q), None) for q in questions}
    model.max_length = sorted(lengths.values())[1]
    too_long = sorted(i for i, n in lengths.items() if n > model.max_length)
    assert 1 <= len(too_long) <= 2
    out = tmp_path / "gen.jsonl"
    with pytest.raises(RBridgeError, match="--skip-too-long"):
        generate_traces(questions, model, out, backend_label="hf", progress=False)
    summary = generate_traces(
        questions, model, tmp_path / "gen2.jsonl", backend_label="hf", progress=False,
        skip_too_long=True,
    )  # fmt: skip
    assert summary.skipped[TOO_LONG] == len(too_long)
    skipped = [e for _, e in iter_jsonl(tmp_path / "gen2.jsonl.skipped.jsonl")]
    assert sorted(e["id"] for e in skipped if e["reason"] == TOO_LONG) == too_long
    assert all("pass --skip-too-long" not in e["detail"] for e in skipped)


def test_confidences_reports_what_this_run_did(
    gpt2_dir, data_dir, text_pack, tmp_path, monkeypatch, capsys
):
    """A fresh run that skips two over-long traces says so, and that nothing was done before."""
    records = read_traces(text_pack, require_tokens=False)
    questions = {q.id: q for q in load_questions("gsm8k", data_dir)}
    probe = hf(gpt2_dir)
    limit = sorted(
        needed_tokens(probe, frontier_prompt(questions[r.id]), r.trace) for r in records
    )[1]

    class ShortContext(backend_hf.HFModel):  # the real model, with a context two traces exceed
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.max_length = limit

    monkeypatch.setattr(backend_hf, "HFModel", ShortContext)
    out = tmp_path / "gsm8k.jsonl"
    argv = ["confidences", str(text_pack), str(out), "--model", str(gpt2_dir), "--data-dir",
            str(data_dir), "--device", "cpu", "--no-progress", "--skip-too-long"]  # fmt: skip
    assert traces_main(argv) == 0
    assert capsys.readouterr().out == (
        f"{out}: 2 trace(s) with confidences from {gpt2_dir}, 0 already done, skipped: "
        f"2 {TOO_LONG}\n"
    )
    assert traces_main(argv) == 0
    assert capsys.readouterr().out == (
        f"{out}: 0 trace(s) with confidences from {gpt2_dir}, 4 already done, skipped: none\n"
    )


def hub_unreachable_env(tmp_path) -> dict[str, str]:
    """No offline variable set, the hub's endpoint a closed port, an empty hub cache: the
    situation where transformers retries for most of a minute."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_CACHE=str(tmp_path / "hub-cache"),
    )
    return env


def run_traces(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rbridge_tasks.cli", "traces", *argv],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["confidences", "generate"])
def test_a_model_that_is_neither_a_folder_nor_reachable_fails_at_once(
    data_dir, text_pack, tmp_path, command
):
    env = hub_unreachable_env(tmp_path)
    out = tmp_path / "out.jsonl"
    if command == "confidences":
        base = ["confidences", str(text_pack), str(out), "--context", "record"]
    else:
        base = ["generate", "--benchmark", "gsm8k", "--data-dir", str(data_dir), "--limit", "1",
                "--out", str(out)]  # fmt: skip
    (tmp_path / "a-file").write_text("")
    port = env["HF_ENDPOINT"].rsplit(":", 1)[1]
    for model, message in (
        (
            "no-org/no-model",
            "--model no-org/no-model: not a local folder, and the Hugging Face hub is "
            f"unreachable (no connection to 127.0.0.1:{port}: [Errno 111] Connection refused) "
            "with no copy of it in the hub cache; pass a local model folder",
        ),
        ("./missing-model", "--model ./missing-model: no such folder"),
        (str(tmp_path / "x"), f"--model {tmp_path / 'x'}: no such folder"),
        (
            str(tmp_path / "a-file"),
            f"--model {tmp_path / 'a-file'}: this is a file; pass the model's folder or a hub id",
        ),
    ):
        result = run_traces([*base, "--backend", "hf", "--model", model], env)
        assert (result.returncode, result.stderr) == (2, f"rbridge traces: error: {message}\n")
        assert not out.exists()


def test_a_cached_hub_model_loads_from_the_cache_when_the_hub_is_unreachable(
    gpt2_dir, text_pack, tmp_path
):
    env = hub_unreachable_env(tmp_path)
    commit = "0" * 40
    repo = Path(env["HF_HUB_CACHE"]) / "models--tiny-org--tiny-gpt2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(gpt2_dir, repo / "snapshots" / commit)
    out = tmp_path / "out.jsonl"
    argv = ["confidences", str(text_pack), str(out), "--context", "record", "--limit", "1",
            "--model", "tiny-org/tiny-gpt2", "--device", "cpu", "--no-progress"]  # fmt: skip
    result = run_traces(argv, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{out}: 1 trace(s) with confidences from tiny-org/tiny-gpt2, 0 already done, "
        "skipped: none\n"
    )
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr
    (record,) = read_traces(out)
    assert record.frontier_model == "tiny-org/tiny-gpt2"


def test_answer_lines_of_every_format_are_flagged_and_stripped(data_dir, tmp_path, capsys):
    questions = load_questions("gsm8k", data_dir)[:5]
    body = "She sells 16 - 3 - 4 = 9 eggs a day.\nThat makes 9 * 2 = 18 dollars."
    rows = [{"out": {"text": body + ending}, "name": name} for name, ending in ANSWER_LINES.items()]
    source = tmp_path / "plain.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # no id field: with --ids-are-row-indexes the records are rows 0..4; the text is nested
    result = import_text_traces(
        "jsonl", source, data_dir=data_dir, benchmark="gsm8k", author_model="demo",
        text_field="out.text", ids_are_row_indexes=True,
    )  # fmt: skip
    assert [r.id for r in result.records] == [q.id for q in questions]
    for record, name in zip(result.records, ANSWER_LINES, strict=True):
        assert record.trace == body, name
        assert record.meta["stripped_answer_text"] == ANSWER_LINES[name]

    left = tmp_path / "left.jsonl"  # the same traces with their answer lines left in
    write_traces(
        left,
        [
            replace(r, trace=body + ANSWER_LINES[n])
            for r, n in zip(result.records, ANSWER_LINES, strict=True)
        ],
    )
    code = traces_main(["validate", str(left), "--data-dir", str(data_dir), "--text-only",
                        "--strict", "--json"])  # fmt: skip
    warnings = json.loads(capsys.readouterr().out)["benchmarks"]["gsm8k"]["warnings"]
    assert code == 1
    assert warnings["trace still ends with a final-answer line"]["count"] == len(ANSWER_LINES)
    write_traces(left, result.records)  # as imported: nothing left to flag (5 questions: say so)
    assert traces_main(["validate", str(left), "--data-dir", str(data_dir), "--text-only",
                        "--strict", "--min-coverage", "0"]) == 0  # fmt: skip


def test_data_dir_errors_name_the_flag_of_rbridge_traces(tmp_path, capsys):
    pack = tmp_path / "p.jsonl"
    pack.write_text('{"id": 0, "trace": "x"}\n')
    base = ["import", "--format", "jsonl", str(pack), "--benchmark", "gsm8k", "--author-model",
            "m", "--out", str(tmp_path / "o.jsonl")]  # fmt: skip
    for extra, expected in (
        (["--data-dir", str(tmp_path / "nowhere")], f"--data-dir={tmp_path / 'nowhere'} "),
        ([], "pass --data-dir=DIR"),  # no hub (HF_DATASETS_OFFLINE=1 in the tests)
    ):
        with pytest.raises(RBridgeError) as info:
            traces_main([*base, *extra])
        assert expected in str(info.value) and "--metadata" not in str(info.value)
    # the tasks' own wording is back once the command is done
    with pytest.raises(RBridgeError, match="--metadata data_dir=DIR"):
        load_questions("gsm8k")


def test_import_writes_shareable_files(data_dir, tmp_path):
    source = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    out = tmp_path / "gsm8k-text.jsonl"
    old = os.umask(0o022)
    try:
        code = traces_main(["import", "--format", "rereading", source, "--data-dir",
                            str(data_dir), "--out", str(out)])  # fmt: skip
    finally:
        os.umask(old)
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


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
