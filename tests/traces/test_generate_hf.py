"""`generate` with the hf backend: every benchmark's prompt, logprobs, answers, resume."""

from __future__ import annotations

import json
import shutil

import pytest
from memorised_model import ANSWER_ONLY_ROWS, COMPLETIONS, CORRECT_ROWS
from trace_checks import assert_close, forward_logprobs, generated_record_logprobs_match

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.sources import BENCHMARK_NAMES, load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.generate import INCORRECT, NO_REASONING, SKIPPED_SUFFIX, generate_traces
from rbridge_tasks.traces.prompts import frontier_prompt


def skipped(path):
    log = path.with_name(path.name + SKIPPED_SUFFIX)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("benchmark_name", BENCHMARK_NAMES)  # not `benchmark`: a common fixture
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_every_prompt_format_generates_logprobs_that_match_a_forward_pass(
    benchmark_name, family, gpt2_dir, llama_dir, data_dir, tmp_path
):
    model_dir = {"gpt2": gpt2_dir, "llama": llama_dir}[family]
    questions = load_questions(benchmark_name, data_dir)[:3]
    out = tmp_path / "traces.jsonl"
    model = HFModel(
        str(model_dir),
        model_name="tiny",
        dtype="float32",
        device="cpu",
        batch_size=2,
        max_new_tokens=10,
    )
    summary = generate_traces(questions, model, out, backend_label="hf", progress=False)
    records = read_traces(out)  # schema, including tokens spelling the trace exactly
    assert summary.written == len(records)
    assert summary.written + sum(summary.skipped.values()) == len(questions)
    assert [s["reason"] for s in skipped(out)] == [NO_REASONING] * sum(summary.skipped.values())
    for record in records:
        question = next(q for q in questions if q.id == record.id)
        prompt = record.meta["prompt"]
        assert prompt == frontier_prompt(question).completion
        assert question.question in prompt
        assert all(f"({label}) {text}" in prompt for label, text in question.choices)
        assert record.frontier_model == "tiny" and record.benchmark == benchmark_name
        assert record.correct is False  # a random model
        generated_record_logprobs_match(record, model_dir)


@pytest.fixture()
def gsm8k_rows(data_dir):
    return load_questions("gsm8k", data_dir)[: len(COMPLETIONS)]


def memorised(memorised_dir, **kwargs) -> HFModel:
    return HFModel(
        str(memorised_dir),
        model_name="memorised",
        dtype="float32",
        device="cpu",
        batch_size=2,
        max_new_tokens=60,
        **kwargs,
    )


def test_answers_are_extracted_checked_and_stripped(memorised_dir, gsm8k_rows, tmp_path):
    out = tmp_path / "traces.jsonl"
    summary = generate_traces(
        gsm8k_rows, memorised(memorised_dir), out, backend_label="hf", progress=False
    )
    records = {r.id: r for r in read_traces(out)}
    assert sorted(records) == sorted(str(i) for i in COMPLETIONS if i not in ANSWER_ONLY_ROWS)
    assert summary.correct == len(CORRECT_ROWS)
    assert skipped(out) == [
        {"benchmark": "gsm8k", "id": str(i), "reason": NO_REASONING, "answer": gsm8k_rows[i].gold}
        for i in ANSWER_ONLY_ROWS
    ]
    for row, record in records.items():
        completion = COMPLETIONS[int(row)]
        reasoning, _, answer_line = completion.rpartition("\n")
        assert record.meta["completion"] == completion
        assert record.trace == reasoning.strip()
        assert record.meta["stripped_answer_text"] == "\n" + answer_line
        assert record.answer == answer_line.removeprefix("The answer is ").rstrip(".")
        assert record.correct is (int(row) in CORRECT_ROWS)
        assert record.meta["finish_reason"] == "stop"
        generated_record_logprobs_match(record, memorised_dir)
    # the duck emoji is four byte tokens: three empty texts, then the token that completes it
    texts = records["0"].token_texts
    duck = next(i for i, t in enumerate(texts) if "🦆" in t)
    assert texts[duck - 3 : duck] == ("",) * 3
    assert len(set(records["0"].token_logprobs)) > 1  # real, varying confidences


def test_only_correct_skips_wrong_answers_and_remembers_them(memorised_dir, gsm8k_rows, tmp_path):
    out = tmp_path / "traces.jsonl"
    generate_traces(
        gsm8k_rows,
        memorised(memorised_dir),
        out,
        backend_label="hf",
        only_correct=True,
        progress=False,
    )
    assert [r.id for r in read_traces(out)] == [str(i) for i in CORRECT_ROWS]
    reasons = {s["id"]: s["reason"] for s in skipped(out)}
    assert reasons == {"1": INCORRECT, "2": NO_REASONING}
    again = generate_traces(
        gsm8k_rows,
        memorised(memorised_dir),
        out,
        backend_label="hf",
        only_correct=True,
        progress=False,
    )
    assert again.written == 0 and again.already_done == len(gsm8k_rows)


def test_resume_after_a_crash_mid_line_gives_the_same_file(memorised_dir, gsm8k_rows, tmp_path):
    whole = tmp_path / "whole.jsonl"
    generate_traces(gsm8k_rows, memorised(memorised_dir), whole, backend_label="hf", progress=False)
    crashed = tmp_path / "crashed.jsonl"
    lines = whole.read_bytes().splitlines(keepends=True)
    crashed.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # died writing record 2
    shutil.copy(
        whole.with_name(whole.name + SKIPPED_SUFFIX),
        crashed.with_name(crashed.name + SKIPPED_SUFFIX),
    )
    resumed = generate_traces(
        gsm8k_rows, memorised(memorised_dir), crashed, backend_label="hf", progress=False
    )
    assert resumed.already_done == 2  # record 1 and the skipped answer-only question
    assert crashed.read_bytes() == whole.read_bytes()


def test_stop_string_cuts_the_completion_and_its_tokens(memorised_dir, gsm8k_rows, tmp_path):
    out = tmp_path / "traces.jsonl"
    generate_traces(
        gsm8k_rows[:1],
        memorised(memorised_dir, stop=["\nThe answer"]),
        out,
        backend_label="hf",
        progress=False,
    )
    (record,) = read_traces(out)
    reasoning = COMPLETIONS[0].rpartition("\n")[0]
    assert record.meta["completion"] == reasoning
    assert record.trace == reasoning.strip()
    assert record.meta["finish_reason"] == "stop"
    assert record.answer == "18" and record.correct  # the last number, as no answer line is left
    generated_record_logprobs_match(record, memorised_dir)


def test_chat_template_is_used_when_the_tokenizer_has_one(gpt2_dir, data_dir, tmp_path):
    chat_dir = tmp_path / "chat-model"
    shutil.copytree(gpt2_dir, chat_dir)
    config_path = chat_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    config_path.write_text(json.dumps(config))
    question = load_questions("csqa", data_dir)[0]
    out = tmp_path / "traces.jsonl"
    model = HFModel(str(chat_dir), dtype="float32", device="cpu", max_new_tokens=8)
    generate_traces([question], model, out, backend_label="hf", progress=False)
    (record,) = read_traces(out)
    user = frontier_prompt(question).user
    assert record.meta["prompt"] == f"<|user|>{user}\n<|assistant|>"
    prompt_ids = list(model.tokenizer(record.meta["prompt"], add_special_tokens=False).input_ids)
    ids = record.meta["completion_token_ids"]
    start = record.meta["trace_token_start"]
    expected = forward_logprobs(chat_dir, prompt_ids, ids)[start : start + len(record.token_texts)]
    assert_close(list(record.token_logprobs), expected)


def test_chat_format_without_a_chat_template_is_a_clear_error(gpt2_dir):
    with pytest.raises(RBridgeError, match="--prompt-format chat needs a tokenizer with a chat"):
        HFModel(str(gpt2_dir), dtype="float32", device="cpu", prompt_format="chat")


def test_cli_generate_and_its_errors(memorised_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    argv = [
        "generate",
        "--benchmark",
        "gsm8k",
        "--backend",
        "hf",
        "--model",
        str(memorised_dir),
        "--data-dir",
        str(data_dir),
        "--ids",
        "0,3",
        "--max-new-tokens",
        "60",
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert traces_main(argv) == 0
    assert "2 new trace(s) (2 correct)" in capsys.readouterr().out
    assert [r.id for r in read_traces(out)] == ["0", "3"]
    assert traces_main(argv) == 0
    assert "0 new trace(s) (0 correct), 2 already done" in capsys.readouterr().out
    with pytest.raises(RBridgeError, match=r"--ids: not gsm8k question ids: \['99999'\]"):
        traces_main([*argv[:9], "--ids", "99999", "--out", str(out)])
    with pytest.raises(RBridgeError, match="--category applies to mmlu_pro only"):
        traces_main([*argv, "--category", "math"])


def test_cli_mmlu_pro_category_filter(gpt2_dir, data_dir, tmp_path):
    out = tmp_path / "traces.jsonl"
    assert (
        traces_main(
            [
                "generate",
                "--benchmark",
                "mmlu_pro",
                "--backend",
                "hf",
                "--model",
                str(gpt2_dir),
                "--data-dir",
                str(data_dir),
                "--category",
                "physics",
                "--limit",
                "2",
                "--max-new-tokens",
                "4",
                "--dtype",
                "float32",
                "--device",
                "cpu",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    physics = [
        q.id for q in load_questions("mmlu_pro", data_dir) if q.extra["category"] == "physics"
    ][:2]
    written = [r.id for r in read_traces(out)]
    skipped_ids = [s["id"] for s in skipped(out)]
    assert sorted(written + skipped_ids) == sorted(physics)
    with pytest.raises(RBridgeError, match=r"unknown MMLU-Pro categories \['astrology'\]"):
        traces_main(
            [
                "generate",
                "--benchmark",
                "mmlu_pro",
                "--backend",
                "hf",
                "--model",
                str(gpt2_dir),
                "--data-dir",
                str(data_dir),
                "--category",
                "astrology",
                "--out",
                str(out),
            ]
        )


def test_a_model_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    with pytest.raises(RBridgeError, match=r"cannot load model .*missing-model.* with"):
        HFModel(str(tmp_path / "missing-model"))
