"""`confidences`: teacher-forced logprobs for real text-only traces, checked by a forward pass;
traces too long for the model skipped, listed and counted in what the run reports."""

from __future__ import annotations

import glob
import json
import shutil
from dataclasses import replace

import pytest
from trace_checks import assert_close, forward_logprobs, needed_tokens, tiny_hf, tokenizer_of

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.jsonl import iter_jsonl
from rbridge_tasks.questions.sources import Question, load_questions
from rbridge_tasks.records.files import read_traces, write_traces
from rbridge_tasks.traces import backend_hf
from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.confidences import add_confidences
from rbridge_tasks.traces.generate import TOO_LONG
from rbridge_tasks.traces.importers import import_text_traces
from rbridge_tasks.traces.prompts import frontier_prompt


def rereading_file(data_dir, prefix: str) -> str:
    return glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / f"{prefix}_*.jsonl"))[0]


@pytest.fixture()
def gsm8k_text_pack(data_dir, tmp_path):
    records = import_text_traces(
        "rereading", rereading_file(data_dir, "gsm"), data_dir=data_dir
    ).records[:5]
    path = tmp_path / "gsm8k-text.jsonl"
    write_traces(path, records)
    return path


def hf(model_dir, **kwargs) -> HFModel:
    return HFModel(
        str(model_dir), model_name=f"tiny-{model_dir.name}", dtype="float32", device="cpu", **kwargs
    )


def check_against_forward_pass(record, model_dir, context_text: str) -> None:
    tokenizer = tokenizer_of(model_dir)
    ids = tokenizer(record.trace, add_special_tokens=False).input_ids
    assert record.meta["trace_token_ids"] == ids
    assert "".join(record.token_texts) == record.trace
    expected = forward_logprobs(model_dir, tokenizer(context_text).input_ids, ids)
    assert_close(list(record.token_logprobs), expected)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_real_gpt4o_mini_traces_get_the_models_logprobs(
    family, gpt2_dir, llama_dir, data_dir, gsm8k_text_pack, tmp_path
):
    model_dir = {"gpt2": gpt2_dir, "llama": llama_dir}[family]
    out = tmp_path / "with-confidences.jsonl"
    summary = add_confidences(
        gsm8k_text_pack, out, hf(model_dir, batch_size=2), data_dir=data_dir, progress=False
    )
    originals = read_traces(gsm8k_text_pack, require_tokens=False)
    records = read_traces(out)  # now complete records: tokens spell each trace exactly
    assert summary.written == len(records) == len(originals)
    questions = {q.id: q for q in load_questions("gsm8k", data_dir)}
    for original, record in zip(originals, records, strict=True):
        assert (record.id, record.trace, record.answer) == (
            original.id,
            original.trace,
            original.answer,
        )
        assert record.frontier_model == f"tiny-{model_dir.name}"
        assert record.meta["trace_author_model"] == "gpt-4o-mini-2024-07-18"
        assert record.meta["confidence_context"] == "prompt"
        check_against_forward_pass(
            record, model_dir, frontier_prompt(questions[record.id]).completion
        )


def test_resume_after_a_crash_gives_the_same_file(gpt2_dir, data_dir, gsm8k_text_pack, tmp_path):
    whole, crashed = tmp_path / "whole.jsonl", tmp_path / "crashed.jsonl"
    add_confidences(
        gsm8k_text_pack, whole, hf(gpt2_dir, batch_size=2), data_dir=data_dir, progress=False
    )
    lines = whole.read_bytes().splitlines(keepends=True)
    crashed.write_bytes(b"".join(lines[:2]) + lines[2][:100])
    summary = add_confidences(
        gsm8k_text_pack, crashed, hf(gpt2_dir, batch_size=2), data_dir=data_dir, progress=False
    )
    assert (summary.already_done, summary.written) == (2, 3)
    assert crashed.read_bytes() == whole.read_bytes()


def test_record_context_reads_the_trace_after_the_records_own_question(
    gpt2_dir, data_dir, tmp_path
):
    """CommonsenseQA records hold the stem only, so without the benchmark the options are
    missing from the context and the confidences differ."""
    records = import_text_traces(
        "rereading", rereading_file(data_dir, "commonsenseqa"), data_dir=data_dir
    ).records[:2]
    pack = tmp_path / "csqa-text.jsonl"
    write_traces(pack, records)
    by_prompt, by_record = tmp_path / "prompt.jsonl", tmp_path / "record.jsonl"
    add_confidences(pack, by_prompt, hf(gpt2_dir), data_dir=data_dir, progress=False)
    add_confidences(pack, by_record, hf(gpt2_dir), context="record", progress=False)
    for with_prompt, with_record in zip(
        read_traces(by_prompt), read_traces(by_record), strict=True
    ):
        assert with_record.meta["confidence_context"] == "record"
        stem_only = frontier_prompt(Question(with_record.id, "csqa", with_record.question, ""))
        check_against_forward_pass(with_record, gpt2_dir, stem_only.completion)
        assert with_prompt.token_texts == with_record.token_texts
        assert with_prompt.token_logprobs != with_record.token_logprobs


def test_tokenizer_that_cannot_spell_the_trace_is_a_clear_error(
    gpt2_dir, data_dir, gsm8k_text_pack, tmp_path
):
    lowercasing = tmp_path / "lowercasing"
    shutil.copytree(gpt2_dir, lowercasing)
    spec = json.loads((lowercasing / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Lowercase"}
    (lowercasing / "tokenizer.json").write_text(json.dumps(spec))
    first_id = read_traces(gsm8k_text_pack, require_tokens=False)[0].id
    with pytest.raises(
        RBridgeError,
        match=rf"gsm8k-text.jsonl, id '{first_id}': the confidence "
        r"model's tokenizer does not reproduce the trace",
    ):
        add_confidences(
            gsm8k_text_pack,
            tmp_path / "out.jsonl",
            hf(lowercasing),
            data_dir=data_dir,
            progress=False,
        )


def test_bad_inputs_name_file_record_and_field(gpt2_dir, data_dir, gsm8k_text_pack, tmp_path):
    records = read_traces(gsm8k_text_pack, require_tokens=False)
    stray = tmp_path / "stray.jsonl"
    write_traces(stray, [replace(records[0], id="99999")])
    with pytest.raises(
        RBridgeError,
        match=r"stray.jsonl, id '99999', field 'id': no gsm8k "
        r"question has this id",
    ):
        add_confidences(
            stray, tmp_path / "out.jsonl", hf(gpt2_dir), data_dir=data_dir, progress=False
        )
    with pytest.raises(RBridgeError, match="write the traces with confidences to a new file"):
        add_confidences(gsm8k_text_pack, gsm8k_text_pack, hf(gpt2_dir), progress=False)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "0", "benchmark": "gsm8k", "question": "q", "trace": ""}\n')
    with pytest.raises(RBridgeError, match=r"broken.jsonl, line 1, id '0'.*frontier_model"):
        add_confidences(broken, tmp_path / "out2.jsonl", hf(gpt2_dir), progress=False)


def test_cli_confidences(gpt2_dir, data_dir, gsm8k_text_pack, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    argv = [
        "confidences",
        str(gsm8k_text_pack),
        str(out),
        "--model",
        str(gpt2_dir),
        "--data-dir",
        str(data_dir),
        "--limit",
        "2",
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert traces_main(argv) == 0
    assert f"{out}: 2 trace(s) with confidences from {gpt2_dir}" in capsys.readouterr().out
    assert [r.frontier_model for r in read_traces(out)] == [str(gpt2_dir)] * 2


def test_confidences_skip_too_long_lists_them_and_goes_on(gpt2_dir, data_dir, text_pack, tmp_path):
    model = tiny_hf(gpt2_dir, batch_size=2)
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


def test_confidences_reports_what_this_run_did(
    gpt2_dir, data_dir, text_pack, tmp_path, monkeypatch, capsys
):
    """A fresh run that skips two over-long traces says so, and that nothing was done before."""
    records = read_traces(text_pack, require_tokens=False)
    questions = {q.id: q for q in load_questions("gsm8k", data_dir)}
    probe = tiny_hf(gpt2_dir)
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
