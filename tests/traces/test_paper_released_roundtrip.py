"""A miniature released dataset written from our own paper-format runs (through the test
server) reads back as exactly the pack the generator wrote; `--inspect` shows how."""

from __future__ import annotations

import dataclasses
import json

import pytest
from released_layout_fixture import write_released_layout
from test_paper_generate import cut, escaped

from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.records.files import read_traces
from rbridge_tasks.records.released import ReleasedMapping, read_released
from rbridge_tasks.traces.backend_openai import OpenAICompatibleBackend, RetryPolicy
from rbridge_tasks.traces.cli import main as traces_main
from rbridge_tasks.traces.generate import generate_traces

REASONINGS = [
    'Step 1: "x" \\ y/z\n\tthen 🦆 😀 é\b\f\r',
    "2 + 2 = 4\nso ✓",
    "Use a loop:\n    for i in range(n):\n        total += i\n",
]
REPLY_FIELDS = {"completion", "reply_tokens", "reasoning_span", "final_answer"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory, memorised_dir, data_dir):
    """Paper-format packs of gsm8k (3), math500 (2, one retried) and humaneval (1)."""
    from openai_test_server import TinyModelServer

    server = TinyModelServer(memorised_dir).start()
    out = tmp_path_factory.mktemp("paper-packs")
    packs = {}
    try:
        for n, (benchmark, count) in enumerate((("gsm8k", 3), ("math500", 2), ("humaneval", 1))):
            questions = load_questions(benchmark, data_dir)[:count]
            for i, question in enumerate(questions):
                forms = escaped(REASONINGS[i], ensure_ascii=bool((n + i) % 2))
                answer = json.dumps(question.gold, ensure_ascii=False)
                raw = '{"reasoning": "' + "".join(forms) + f'", "final_answer": {answer}}}'
                scripted = [cut(raw.encode("utf-8"), seed=10 * n + i)]
                if benchmark == "math500" and i == 1:
                    scripted.insert(0, cut(b'{"reasoning": ', seed=99))  # retried
                server.scripted[question.question] = scripted
            backend = OpenAICompatibleBackend(
                "gpt-4o", server.base_url, concurrency=1, retry=RetryPolicy(max_retries=0)
            )
            path = out / f"{benchmark}.jsonl"
            summary = generate_traces(
                questions,
                backend,
                path,
                backend_label="openai",
                progress=False,
                prompt_style="paper",
            )
            assert summary.written == count
            packs[benchmark] = read_traces(path)
    finally:
        server.stop()
    return packs


@pytest.fixture(scope="module")
def released(generated, tmp_path_factory):
    root = tmp_path_factory.mktemp("rBridge")
    for records in generated.values():
        write_released_layout(records, root)
    return root


def same_as_generated(read, generated) -> None:
    assert len(read) == len(generated)
    for ours, theirs in zip(generated, read, strict=True):
        assert set(theirs.meta) == REPLY_FIELDS
        assert theirs == dataclasses.replace(ours, meta={k: ours.meta[k] for k in REPLY_FIELDS})


def test_the_reader_reproduces_the_generators_pack(generated, released):
    names = sorted(str(p.relative_to(released)) for p in (released / "traces").rglob("*.json*"))
    assert names == [
        "traces/gsm8k/gpt4o_s1_new.json",
        *(f"traces/gsm8k/gpt4o_s1_new_logprobs_part0{n}_of_03.jsonl" for n in (1, 2, 3)),
        "traces/humaneval/gpt4o_s1.json",
        "traces/humaneval/gpt4o_s1_logprobs.jsonl",
        *(f"traces/math500/gpt4o_s1_logprobs_part0{n}_of_03_merged.jsonl" for n in (1, 2, 3)),
        "traces/math500/gpt4o_s1_merged.json",
    ]
    for benchmark, records in generated.items():
        assert [r.trace for r in records] == REASONINGS[: len(records)]
        same_as_generated(read_released(released, benchmark), records)
    assert generated["math500"][1].meta["attempts"] == 2


def test_import_cli_and_inspect(generated, released, tmp_path, capsys):
    out = tmp_path / "math500.jsonl"
    argv = ["import", "--format", "released", str(released), "--benchmark", "math500"]
    assert traces_main([*argv, "--out", str(out)]) == 0
    assert f"{out}: 2 trace(s), skipped: none" in capsys.readouterr().out
    same_as_generated(read_traces(out), generated["math500"])
    assert traces_main(["import", "--format", "released", "--inspect", str(released)]) == 0
    printed = capsys.readouterr().out
    folder = released / "traces" / "math500"
    assert (
        f"{folder}:\n  traces file: gpt4o_s1_merged.json, 2 completion(s) (a JSON array); fields: "
        "correct (bool), " in (printed)
    )
    assert "id (str), pred (str), question (str), response (str)" in printed
    assert (
        "  logprob files: gpt4o_s1_logprobs_part01_of_03_merged.jsonl, "
        "gpt4o_s1_logprobs_part02_of_03_merged.jsonl, gpt4o_s1_logprobs_part03_of_03_merged.jsonl;"
        " row fields: bytes (list), id (str), logprob (float), token (str), top_logprobs (list)"
    ) in printed
    first = json.loads((folder / "gpt4o_s1_logprobs_part01_of_03_merged.jsonl").open().readline())
    assert f"  sample row: {json.dumps(first, ensure_ascii=False)}" in printed
    for line in (
        "    trace_id: 'id'",
        "    trace: 'response'",
        "    answer: 'pred'",
        "  rows: one row per token; row fields used:",
        "    logprob_trace_id: 'id'",
        "    logprob_token: 'token'",
        "    logprob_position: none of ['position', 'token_index', 'token_idx', 'pos']",
        "    logprob_bytes: 'bytes'",
        "  join: rows' 'id' = completions' 'id'",
        '  reads as math500: 2 record(s) (JSON replies); first: \'Step 1: "x" \\\\ y/z\\n\\t',
        "  reads as humaneval: 1 record(s) (JSON replies)",
        "  reads as gsm8k: 3 record(s) (JSON replies)",
    ):
        assert line in printed, line
    assert printed.startswith(f"mapping: {ReleasedMapping()}")
