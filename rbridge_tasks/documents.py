"""The documents an rBridge task scores: benchmark questions joined with their frontier traces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rbridge_tasks.benchmarks import (
    Question,
    check_benchmark,
    load_questions,
    normalise_text,
    proxy_prompt,
)
from rbridge_tasks.errors import RBridgeError
from rbridge_tasks.records import TraceRecord
from rbridge_tasks.released import ReleasedMapping, fetch_released, read_released
from rbridge_tasks.trace_io import read_traces
from rbridge_tasks.weights import MINMAX_SCOPES, confidences, minmax


@dataclass(frozen=True)
class TaskSettings:
    """The task options a user sets with `--metadata key=value` (see the README)."""

    benchmark: str
    traces: str | None = None
    data_dir: str | None = None
    released_mapping: str | None = None
    minmax_scope: str = "trace"
    check_questions: bool = True
    strict_split: bool = False

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> TaskSettings:
        benchmark = metadata.get("benchmark")
        if not isinstance(benchmark, str):
            raise RBridgeError("the task YAML must set metadata.benchmark")
        scope = str(metadata.get("minmax_scope", "trace"))
        if scope not in MINMAX_SCOPES:
            raise RBridgeError(
                f"--metadata minmax_scope={scope!r}: expected one of {MINMAX_SCOPES}"
            )
        return cls(
            benchmark=check_benchmark(benchmark),
            traces=_optional_str(metadata.get("traces")),
            data_dir=_optional_str(metadata.get("data_dir")),
            released_mapping=_optional_str(metadata.get("released_mapping")),
            minmax_scope=scope,
            check_questions=_flag(metadata, "check_questions", True),
            strict_split=_flag(metadata, "strict_split", False),
        )


def load_trace_records(settings: TaskSettings) -> tuple[list[TraceRecord], str]:
    """The benchmark's trace records and a description of where they came from.

    `traces` may be a trace file (records of other benchmarks are skipped, so one file can serve
    the whole `rbridge` group), a folder with `<benchmark>.jsonl[.gz]` files, or a local copy of
    the released dataset; without it the released traces are fetched from the hub.
    """
    benchmark = settings.benchmark
    mapping = ReleasedMapping.load(settings.released_mapping)
    if settings.traces is None:
        root = fetch_released(benchmark)
        return read_released(root, benchmark, mapping), f"{root} (released traces)"
    path = Path(settings.traces).expanduser()
    if not path.exists():
        raise RBridgeError(f"traces file not found: {path} (from --metadata traces=...)")
    if path.is_dir():
        for name in (f"{benchmark}.jsonl", f"{benchmark}.jsonl.gz"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            if (path / "traces").is_dir():
                return read_released(path, benchmark, mapping), f"{path} (released traces)"
            raise RBridgeError(
                f"traces folder {path} has neither {benchmark}.jsonl[.gz] nor a "
                "released-dataset traces/ folder"
            )
    records = read_traces(path)
    mine = [r for r in records if r.benchmark == benchmark]
    if not mine:
        found = sorted({r.benchmark for r in records})
        raise RBridgeError(f"{path} has no traces for benchmark {benchmark!r} (it has {found})")
    return mine, str(path)


def build_documents(settings: TaskSettings) -> list[dict[str, Any]]:
    """One document per trace, in the benchmark's order, with normalised frontier weights."""
    records, origin = load_trace_records(settings)
    questions = load_questions(settings.benchmark, settings.data_dir)
    position = {q.id: i for i, q in enumerate(questions)}
    unknown = [r.id for r in records if r.id not in position]
    if unknown:
        raise RBridgeError(
            f"{origin}: {len(unknown)} trace id(s) are not {settings.benchmark} question ids, "
            f"e.g. {unknown[:5]}; the benchmark's ids look like {[q.id for q in questions[:3]]}"
        )
    records.sort(key=lambda r: position[r.id])
    if settings.check_questions:
        _check_questions(records, questions, position, origin)
    scale = _minmax_range(records) if settings.minmax_scope == "benchmark" else (None, None)
    docs = []
    for record in records:
        question = questions[position[record.id]]
        weights = minmax(confidences(record.token_logprobs), *scale)
        docs.append(
            {
                "id": record.id,
                "benchmark": record.benchmark,
                "question": question.question,
                "gold": question.gold,
                "prompt": proxy_prompt(question),
                "trace": record.trace,
                "frontier_model": record.frontier_model,
                "frontier_token_texts": list(record.token_texts),
                "frontier_weights": weights.tolist(),
                "answer": record.answer,
                "correct": record.correct,
            }
        )
    return docs


def _check_questions(
    records: list[TraceRecord], questions: list[Question], position: dict[str, int], origin: str
) -> None:
    """Guard against traces joined to the wrong question (ids from another split or ordering)."""
    for record in records:
        expected = normalise_text(questions[position[record.id]].question)
        if expected not in normalise_text(record.question):
            raise RBridgeError(
                f"{origin}: id {record.id!r}, field 'question': the trace's question "
                f"{record.question[:80]!r} does not contain the benchmark's question "
                f"{expected[:80]!r}; the ids may come from another split or ordering (pass "
                "--metadata check_questions=false to skip this check)"
            )


def _minmax_range(records: list[TraceRecord]) -> tuple[float, float]:
    values = np.concatenate([confidences(r.token_logprobs) for r in records])
    return float(values.min()), float(values.max())


def _flag(metadata: Mapping[str, Any], key: str, default: bool) -> bool:
    value = metadata.get(key, default)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise RBridgeError(f"--metadata {key}={value!r}: expected true or false")
        return lowered in ("true", "1", "yes")
    return bool(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
