"""Reader for the released `trillionlabs/rBridge` traces (GPT-4o traces + token logprobs).

Layout: `traces/<config>/<name>.json` (a JSON array of completions) beside
`<name>_logprobs[_partNN_of_MM][...].jsonl` (token logprobs, one row per token, or one row per
trace holding lists). The field names are not documented anywhere we could check, so every name
is a list of candidates that a mapping (a JSON/YAML file or dict) can override; a file that matches
none of them fails with the fields it does have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from rbridge_tasks.answer_lines import strip_final_answer
from rbridge_tasks.benchmarks import check_benchmark
from rbridge_tasks.errors import RBridgeError, located
from rbridge_tasks.jsonl import iter_jsonl
from rbridge_tasks.records import TraceRecord, parse_record

CONFIG_OF_BENCHMARK = {
    "gsm8k": "gsm8k",
    "math500": "math500",
    "arc_challenge": "arc_challenge",
    "mmlu_pro": "mmlu_pro",
    "csqa": "cqa",
    "humaneval": "humaneval",
}
HUB_REPO = "trillionlabs/rBridge"


@dataclass(frozen=True)
class ReleasedMapping:
    """Candidate field names, first match wins; a mapping file may give one name or a list."""

    trace_id: tuple[str, ...] = ("id", "idx", "index", "question_id", "task_id", "unique_id")
    question: tuple[str, ...] = ("question", "problem", "prompt", "input")
    trace: tuple[str, ...] = (
        "response",
        "completion",
        "output",
        "generation",
        "model_output",
        "reasoning",
        "text",
    )
    answer: tuple[str, ...] = ("pred", "prediction", "extracted_answer", "answer_pred")
    correct: tuple[str, ...] = ("correct", "is_correct")
    logprob_trace_id: tuple[str, ...] = (
        "id",
        "idx",
        "index",
        "question_id",
        "task_id",
        "trace_id",
        "sample_id",
        "unique_id",
    )
    logprob_token: tuple[str, ...] = ("token", "text", "tokens")
    logprob_value: tuple[str, ...] = ("logprob", "log_prob", "logprobs")
    logprob_position: tuple[str, ...] = ("position", "token_index", "token_idx", "pos")
    frontier_model: str = "gpt-4o"
    traces_file: str | None = None  # the .json to use when a folder holds several
    strip_answer: bool = True

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | None) -> ReleasedMapping:
        if source is None:
            return cls()
        if isinstance(source, Mapping):
            raw, origin = dict(source), "mapping"
        else:
            path = Path(source)
            if not path.is_file():
                raise RBridgeError(f"released-traces mapping file not found: {path}")
            raw, origin = yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path)
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise RBridgeError(
                f"{origin}: unknown mapping key(s) {unknown}; known: {sorted(known)}"
            )
        values = {
            k: (
                tuple([v] if isinstance(v, str) else v)
                if isinstance(getattr(cls(), k), tuple)
                else v
            )
            for k, v in raw.items()
        }
        return cls(**values)


# (position, file order, token text, logprob): sorting restores the emitted order
_TokenRow = tuple[float, int, str, float]


def read_released(
    root: str | Path, benchmark: str, mapping: ReleasedMapping | None = None
) -> list[TraceRecord]:
    """Trace records for one benchmark from a local copy of the released dataset."""
    check_benchmark(benchmark)
    mapping = mapping or ReleasedMapping()
    folder = Path(root) / "traces" / CONFIG_OF_BENCHMARK[benchmark]
    if not folder.is_dir():
        raise RBridgeError(
            f"released traces: folder not found: {folder} (expected the "
            f"{HUB_REPO} layout traces/<config>/...)"
        )
    traces_file = _traces_file(folder, mapping)
    token_files = sorted(p for p in folder.glob("*.jsonl") if "logprob" in p.name)
    if not token_files:
        raise RBridgeError(f"released traces: no *logprobs*.jsonl files in {folder}")
    tokens = _read_token_files(token_files, mapping)
    try:
        entries = json.loads(traces_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise located(str(traces_file), f"invalid JSON ({exc.msg})", line=exc.lineno) from exc
    if isinstance(entries, dict):
        entries = list(entries.values())
    records = []
    for n, entry in enumerate(entries):
        where = f"{traces_file} [{n}]"
        if not isinstance(entry, Mapping):
            raise RBridgeError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        trace_id = str(_pick(entry, mapping.trace_id, "trace_id", where))
        token_rows = tokens.pop(trace_id, None)
        if token_rows is None:
            raise RBridgeError(
                f"{where}: no token logprobs for id {trace_id!r} in {[p.name for p in token_files]}"
            )
        ordered = sorted(token_rows)
        obj = {
            "id": trace_id,
            "benchmark": benchmark,
            "question": str(_pick(entry, mapping.question, "question", where)),
            "trace": _pick(entry, mapping.trace, "trace", where),
            "frontier_model": mapping.frontier_model,
            "frontier_tokens": [{"text": t, "logprob": lp} for _, _, t, lp in ordered],
        }
        answer = _pick(entry, mapping.answer, "answer", where, required=False)
        if answer is not None:
            obj["answer"] = str(answer)
        correct = _pick(entry, mapping.correct, "correct", where, required=False)
        if isinstance(correct, bool):
            obj["correct"] = correct
        record = parse_record(obj, source=where)
        records.append(strip_final_answer(record) if mapping.strip_answer else record)
    if tokens:
        extra = sorted(tokens)[:5]
        raise RBridgeError(
            f"released traces: {len(tokens)} id(s) have token logprobs but no trace "
            f"in {traces_file.name}, e.g. {extra}; check the mapping's id fields"
        )
    return records


def fetch_released(benchmark: str) -> Path:
    """Download one benchmark's released traces from the hub (cached by huggingface_hub)."""
    from huggingface_hub import snapshot_download

    config = CONFIG_OF_BENCHMARK[check_benchmark(benchmark)]
    try:
        return Path(
            snapshot_download(HUB_REPO, repo_type="dataset", allow_patterns=[f"traces/{config}/*"])
        )
    except Exception as exc:  # offline mode, network or auth errors all mean the same to the user
        raise RBridgeError(
            f"no traces given and the released {HUB_REPO} traces could not be fetched ({exc}); "
            "pass --metadata traces=PATH (a trace JSONL file or folder, see the README)"
        ) from exc


def _traces_file(folder: Path, mapping: ReleasedMapping) -> Path:
    if mapping.traces_file:
        path = folder / mapping.traces_file
        if not path.is_file():
            raise RBridgeError(f"released traces: {path} not found (mapping 'traces_file')")
        return path
    candidates = sorted(folder.glob("*.json"))
    if len(candidates) != 1:
        raise RBridgeError(
            f"released traces: expected one .json traces file in {folder}, found "
            f"{[p.name for p in candidates]}; name one with the mapping key 'traces_file'"
        )
    return candidates[0]


def _read_token_files(paths: list[Path], mapping: ReleasedMapping) -> dict[str, list[_TokenRow]]:
    by_trace: dict[str, list[_TokenRow]] = {}
    order = 0
    for path in paths:
        for n, row in iter_jsonl(path):
            where = f"{path}, line {n}"
            if not isinstance(row, Mapping):
                raise RBridgeError(f"{where}: expected a JSON object")
            trace_id = str(_pick(row, mapping.logprob_trace_id, "logprob_trace_id", where))
            token = _pick(row, mapping.logprob_token, "logprob_token", where)
            value = _pick(row, mapping.logprob_value, "logprob_value", where)
            target = by_trace.setdefault(trace_id, [])
            if isinstance(token, list):  # one row per trace: parallel lists
                if not isinstance(value, list) or len(value) != len(token):
                    raise RBridgeError(f"{where}: token and logprob lists differ in length")
                for text, lp in zip(token, value, strict=True):
                    target.append((order, order, text, _number(lp, where)))
                    order += 1
            else:
                pos = _pick(
                    row, mapping.logprob_position, "logprob_position", where, required=False
                )
                position = float(pos) if isinstance(pos, (int, float)) else order
                target.append((position, order, token, _number(value, where)))
                order += 1
    return by_trace


def _pick(
    obj: Mapping[str, Any], candidates: tuple[str, ...], key: str, where: str, required: bool = True
) -> Any:
    for name in candidates:
        if name in obj:
            return obj[name]
    if required:
        raise RBridgeError(
            f"{where}: none of the fields {list(candidates)} (mapping key {key!r}) is present; "
            f"the record has {sorted(obj)}. Pass a mapping file with --metadata "
            f"released_mapping=FILE naming the right field"
        )
    return None


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise RBridgeError(f"{where}: logprob {value!r} is not a number")
    return float(value)
