"""`generate` with the hf backend: every benchmark's prompt, logprobs, answers, resume; prompts
too long for the model skipped; loading the model (for `confidences` too) when the hub is
unreachable: one line at once for a model that is neither a folder nor cached, the cache used
for one that is."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from memorised_model import ANSWER_ONLY_ROWS, COMPLETIONS, CORRECT_ROWS
from trace_checks import (
    assert_close,
    forward_logprobs,
    generated_record_logprobs_match,
    needed_tokens,
    tiny_hf,
)

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.core.hub import OFFLINE_VARIABLES
from rbridge_tasks.core.jsonl import iter_jsonl
from rbridge_tasks.questions.sources import BENCHMARK_NAMES, load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.traces.backend_hf import HFModel
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.generate import (
    INCORRECT,
    NO_REASONING,
    SKIPPED_SUFFIX,
    TOO_LONG,
    generate_traces,
)
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


def test_generate_skip_too_long(gpt2_dir, data_dir, tmp_path):
    model = tiny_hf(gpt2_dir, batch_size=2, max_new_tokens=4)
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
