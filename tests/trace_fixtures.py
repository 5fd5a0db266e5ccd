"""Trace records built from real text, with confidences from a tiny stand-in frontier model.

No public trace set ships per-token logprobs, so tests take real reasoning text (GPT-4o-mini
GSM8K/CSQA traces, Gemini MMLU-Pro answers, reference solutions) and teacher-force it through a
tiny local model to get the frontier tokens and logprobs the schema needs.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import torch
from tiny_models import DATA_DIR
from transformers import AutoModelForCausalLM, AutoTokenizer

GPT4O_MINI = DATA_DIR / "traces_gpt4o_mini_rereading"


def frontier_tokens(model_dir: Path, context: str, trace: str) -> list[dict]:
    """Teacher-forced {text, logprob} of the trace's tokens given the context.

    Token texts are cut at the tokens' end offsets, so they concatenate exactly to the trace.
    """
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    enc = tok(context + trace, return_offsets_mapping=True)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits.double(), dim=-1)[0]
    start = len(context)
    out, previous = [], start
    for i, (_, end) in enumerate(enc.offset_mapping):
        if end <= start or i == 0:
            continue
        text = (context + trace)[previous:end]
        previous = max(previous, end)
        if text:  # a token ending inside a character already taken adds no text
            out.append({"text": text, "logprob": float(logprobs[i - 1, enc.input_ids[i]])})
    assert "".join(t["text"] for t in out) == trace
    return out


def record(model_dir: Path, benchmark: str, doc_id: str, question: str, trace: str) -> dict:
    return {
        "id": doc_id,
        "benchmark": benchmark,
        "question": question,
        "trace": trace,
        "frontier_model": "tiny-frontier",
        "frontier_tokens": frontier_tokens(model_dir, f"Question: {question}\nAnswer: ", trace),
    }


def gpt4o_mini_gsm8k(n: int) -> list[dict]:
    """The first n GPT-4o-mini GSM8K traces (by id), answer text included as written."""
    path = next(GPT4O_MINI.glob("gsm_gpt-4o-mini*.jsonl"))
    rows = sorted((json.loads(line) for line in path.open(encoding="utf-8")), key=lambda r: r["id"])
    return rows[:n]


def real_texts(benchmark: str, n: int) -> list[tuple[str, str, str]]:
    """(id, question, reasoning text) for n questions of a benchmark, from real files."""
    if benchmark == "gsm8k":
        return [
            (str(r["id"]), r["input"], r["vanilla"]["generation"][0]) for r in gpt4o_mini_gsm8k(n)
        ]
    if benchmark == "csqa":
        path = next(GPT4O_MINI.glob("commonsenseqa_gpt-4o-mini*.jsonl"))
        dev = [
            json.loads(line) for line in (DATA_DIR / "commonsenseqa/dev_rand_split.jsonl").open()
        ]
        rows = sorted(
            (json.loads(line) for line in path.open(encoding="utf-8")), key=lambda r: r["id"]
        )
        return [
            (dev[r["id"]]["id"], dev[r["id"]]["question"]["stem"], r["vanilla"]["generation"][0])
            for r in rows[:n]
        ]
    if benchmark == "mmlu_pro":
        with zipfile.ZipFile(
            DATA_DIR / "mmlu_pro/model_outputs_gemini-1.5-pro-002_5shots.zip"
        ) as z:
            rows = json.loads(z.read(z.namelist()[0]))
        rows = [r for r in rows if len(r["model_outputs"]) > 200][:n]
        return [(str(r["question_id"]), r["question"], r["model_outputs"]) for r in rows]
    if benchmark == "math500":
        rows = [json.loads(line) for line in (DATA_DIR / "math500/test.jsonl").open()][:n]
        return [(r["unique_id"], r["problem"], r["solution"]) for r in rows]
    if benchmark == "humaneval":
        with gzip.open(DATA_DIR / "humaneval/HumanEval.jsonl.gz", "rt") as fh:
            rows = [json.loads(line) for line in fh][:n]
        return [
            (r["task_id"], r["prompt"], "Here is the implementation:\n" + r["canonical_solution"])
            for r in rows
        ]
    if benchmark == "arc_challenge":
        rows = [
            json.loads(line)
            for line in (DATA_DIR / "arc_challenge/ARC-Challenge-Test.jsonl").open()
        ][:n]
        out = []
        for r in rows:
            gold = next(c["text"] for c in r["question"]["choices"] if c["label"] == r["answerKey"])
            out.append(
                (
                    r["id"],
                    r["question"]["stem"],
                    f"The question asks which option fits best. {gold} matches the facts.",
                )
            )
        return out
    raise ValueError(benchmark)


def write_benchmark_traces(folder: Path, model_dir: Path, per_benchmark: int) -> Path:
    """A traces folder with `<benchmark>.jsonl` for all six benchmarks (the group's layout)."""
    from rbridge_tasks.questions.sources import BENCHMARK_NAMES

    for benchmark in BENCHMARK_NAMES:
        records = [
            record(model_dir, benchmark, i, q, t)
            for i, q, t in real_texts(benchmark, per_benchmark)
        ]
        write_jsonl(folder / f"{benchmark}.jsonl", records)
    return folder


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path
