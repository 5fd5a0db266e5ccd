"""Write a paper-format trace pack (ours, from `generate --prompt paper`) in the released
`trillionlabs/rBridge` layout as we expect it: `traces/<config>/<stem>.json`, a JSON array of
completions (the raw JSON replies), and `<stem>_logprobs[_partNN_of_MM[_merged]].jsonl`, one row
per token of the reply in OpenAI's per-token layout plus the completion's id."""

from __future__ import annotations

import json
from pathlib import Path

from rbridge_tasks.records import TraceRecord
from rbridge_tasks.released import CONFIG_OF_BENCHMARK


def write_released_layout(
    records: list[TraceRecord],
    root: Path,
    *,
    stem: str = "gpt4o_s1",
    parts: int = 1,
    merged: bool = False,
) -> Path:
    """The folder written; rows are split into `parts` consecutive files (one: no part number)."""
    folder = root / "traces" / CONFIG_OF_BENCHMARK[records[0].benchmark]
    folder.mkdir(parents=True, exist_ok=True)
    entries = [
        {
            "id": r.id,
            "question": r.question,
            "response": r.meta["completion"],
            "pred": r.answer,
            "correct": r.correct,
        }
        for r in records
    ]
    (folder / f"{stem}.json").write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    rows = [
        {
            "id": r.id,
            "token": token["text"],
            "logprob": token["logprob"],
            "bytes": list(token["text"].encode("utf-8")),
            "top_logprobs": [],
        }
        for r in records
        for token in r.meta["reply_tokens"]
    ]
    size = -(-len(rows) // parts)
    for part in range(parts):
        name = (
            f"{stem}_logprobs.jsonl"
            if parts == 1
            else f"{stem}_logprobs_part{part + 1:02d}_of_{parts:02d}{'_merged' if merged else ''}"
            ".jsonl"
        )
        chunk = rows[part * size : (part + 1) * size]
        (folder / name).write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in chunk), encoding="utf-8"
        )
    return folder
