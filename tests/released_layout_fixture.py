"""Miniature copies of the released `trillionlabs/rBridge` dataset under the real file names of
every config (the hub's file list at commit aac2f34: `traces/<config>/<traces file>` beside its
logprob files), with completions and rows we make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rbridge_tasks.records.released import CONFIG_OF_BENCHMARK
from rbridge_tasks.records.schema import TraceRecord


def _parts(pattern: str, count: int) -> list[str]:
    return [pattern.format(n) for n in range(1, count + 1)]


# config -> (traces file, its logprob files in part order), exactly as released
RELEASED_FILES: dict[str, tuple[str, list[str]]] = {
    "arc_challenge": (
        "gpt4o_s1_new.json",
        _parts("gpt4o_s1_new_logprobs_part{:02d}_of_03.jsonl", 3),
    ),
    "cqa": ("gpt4o_s1.json", _parts("gpt4o_s1_logprobs_part{:02d}_of_03.jsonl", 3)),
    "gsm8k": ("gpt4o_s1_new.json", _parts("gpt4o_s1_new_logprobs_part{:02d}_of_03.jsonl", 3)),
    "humaneval": ("gpt4o_s1.json", ["gpt4o_s1_logprobs.jsonl"]),
    "math500": (
        "gpt4o_s1_merged.json",
        _parts("gpt4o_s1_logprobs_part{:02d}_of_03_merged.jsonl", 3),
    ),
    "mmlu_pro": (
        "gpt4o_s1_stem_2_new.json",
        _parts("gpt4o_s1_stem_2_new_logprobs_part{:02d}_of_31.jsonl", 31),
    ),
}


def config_folder(root: Path, benchmark: str) -> Path:
    return root / "traces" / CONFIG_OF_BENCHMARK[benchmark]


def write_config(
    root: Path,
    benchmark: str,
    completions: list[Any] | dict[str, Any],
    rows: list[Any],
    *,
    drop_part: int | None = None,
) -> Path:
    """The benchmark's folder: `completions` as its traces file, `rows` in order over its
    logprob files (consecutive runs, as even as possible; `drop_part`: leave that part out)."""
    folder = config_folder(root, benchmark)
    folder.mkdir(parents=True, exist_ok=True)
    traces_name, logprob_names = RELEASED_FILES[CONFIG_OF_BENCHMARK[benchmark]]
    (folder / traces_name).write_text(json.dumps(completions, ensure_ascii=False), "utf-8")
    count = len(logprob_names)
    for k, name in enumerate(logprob_names):
        if k + 1 == drop_part:
            continue
        chunk = rows[len(rows) * k // count : len(rows) * (k + 1) // count]
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chunk)
        (folder / name).write_text(lines, "utf-8")
    return folder


def token_objects(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI's per-token logprob objects for {text, logprob} tokens."""
    return [
        {
            "token": t["text"],
            "logprob": t["logprob"],
            "bytes": list(t["text"].encode("utf-8")),
            "top_logprobs": [],
        }
        for t in tokens
    ]


def write_released_layout(records: list[TraceRecord], root: Path) -> Path:
    """Paper-format records (raw reply and its stream in `meta`) as the released layout of their
    benchmark: a completion per record, a row per reply token in OpenAI's layout plus its id."""
    completions = [
        {
            "id": r.id,
            "question": r.question,
            "response": r.meta["completion"],
            "pred": r.answer,
            "correct": r.correct,
        }
        for r in records
    ]
    rows = [
        {"id": r.id, **token} for r in records for token in token_objects(r.meta["reply_tokens"])
    ]
    return write_config(root, records[0].benchmark, completions, rows)
