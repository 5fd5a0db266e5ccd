"""The vLLM backend on vLLM's real engine (skipped where vLLM cannot be imported, e.g. CPU-only).

Its layer is thin: the shared code it relies on is tested through the HF backend; here the
engine's ids and logprobs are checked against the same independent forward pass.
"""

from __future__ import annotations

import pytest
from memorised_model import ANSWER_ONLY_ROWS, COMPLETIONS, CORRECT_ROWS
from trace_checks import assert_close, generated_record_logprobs_match

from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import read_traces, write_traces
from rbridge_tasks.traces.confidences import add_confidences
from rbridge_tasks.traces.generate import generate_traces

pytest.importorskip("vllm")

from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.backend_vllm import VLLMModel


@pytest.fixture(scope="module")
def engine(memorised_dir):
    return VLLMModel(
        str(memorised_dir),
        model_name="memorised",
        dtype="float32",
        max_new_tokens=60,
        gpu_memory_utilization=0.3,
    )


def test_generation_matches_the_forward_pass(engine, memorised_dir, data_dir, tmp_path):
    questions = load_questions("gsm8k", data_dir)[: len(COMPLETIONS)]
    out = tmp_path / "traces.jsonl"
    summary = generate_traces(questions, engine, out, backend_label="vllm", progress=False)
    assert summary.correct == len(CORRECT_ROWS)
    records = read_traces(out)
    assert sorted(r.id for r in records) == sorted(
        str(i) for i in COMPLETIONS if i not in ANSWER_ONLY_ROWS
    )
    for record in records:
        assert record.meta["completion"] == COMPLETIONS[int(record.id)]
        generated_record_logprobs_match(record, memorised_dir)


def test_teacher_forcing_matches_the_hf_backend(engine, memorised_dir, data_dir, tmp_path):
    questions = load_questions("gsm8k", data_dir)[: len(COMPLETIONS)]
    generated = tmp_path / "generated.jsonl"
    generate_traces(
        questions,
        HFModel(str(memorised_dir), dtype="float32", device="cpu", max_new_tokens=60),
        generated,
        backend_label="hf",
        progress=False,
    )
    text_only = tmp_path / "text.jsonl"
    write_traces(text_only, read_traces(generated))
    by_vllm, by_hf = tmp_path / "vllm.jsonl", tmp_path / "hf.jsonl"
    add_confidences(text_only, by_vllm, engine, data_dir=data_dir, progress=False)
    add_confidences(
        text_only,
        by_hf,
        HFModel(str(memorised_dir), dtype="float32", device="cpu"),
        data_dir=data_dir,
        progress=False,
    )
    for a, b in zip(read_traces(by_vllm), read_traces(by_hf), strict=True):
        assert a.token_texts == b.token_texts
        assert_close(list(a.token_logprobs), list(b.token_logprobs))
