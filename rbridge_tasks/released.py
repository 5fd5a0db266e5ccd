"""Reader for the released `trillionlabs/rBridge` traces (GPT-4o traces + token logprobs).

Layout: `traces/<config>/<stem>.json`, a JSON array of completions, beside its token logprobs:
`<stem>_logprobs.jsonl` (HumanEval) or the sequence `<stem>_logprobs_partNN_of_MM[...].jsonl`
(MATH-500 writes `_merged` after the part number), every part of which must be there. A row is
one completion token, in OpenAI's per-token layout (`token`, `logprob`, `bytes`, `top_logprobs`)
plus a key naming its completion; one row per completion holding lists is read too. `bytes`,
when present, gives the token texts (a character split over byte tokens goes to the token that
completes it, `traces/token_text.py`).

A completion that is a JSON reply (the paper's prompt) has a stream covering the whole reply: the
trace is its decoded `reasoning`, each character's confidence carried through the JSON escapes
(`traces/json_reply.py`), and the raw reply and stream stay in `meta`. A plain-text completion's
stream spells the completion, whose final-answer line is stripped.

The field names are not documented anywhere we could check, so every name is a list of
candidates that a mapping (a JSON/YAML file or dict) can override; a file that matches none of
them fails with the fields it does have, and `inspect_released` (`rbridge traces import --format
released --inspect DIR`) prints what it found and the names it would use.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from rbridge_tasks.answer_lines import strip_final_answer
from rbridge_tasks.benchmarks import check_benchmark
from rbridge_tasks.errors import RBridgeError, first_line, located
from rbridge_tasks.hub import hub_unreachable
from rbridge_tasks.jsonl import iter_jsonl, read_json
from rbridge_tasks.records import TraceRecord, parse_record
from rbridge_tasks.traces.json_reply import (
    ReplyFormatError,
    StreamMismatchError,
    looks_like_reply,
    map_reasoning,
    reply_meta,
)
from rbridge_tasks.traces.token_text import texts_from_bytes

CONFIG_OF_BENCHMARK = {
    "gsm8k": "gsm8k",
    "math500": "math500",
    "arc_challenge": "arc_challenge",
    "mmlu_pro": "mmlu_pro",
    "csqa": "cqa",
    "humaneval": "humaneval",
}
HUB_REPO = "trillionlabs/rBridge"
COMPLETION_FORMATS = ("auto", "json", "text")
LOGPROB_FILE = re.compile(
    r"(?P<stem>.+?)_logprobs(?:_part(?P<part>\d+)_of_(?P<parts>\d+))?(?P<tail>[^.]*)\.jsonl"
)
_INSPECTED = 50  # completions and rows whose fields `inspect_released` lists


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
    logprob_bytes: tuple[str, ...] = ("bytes",)
    frontier_model: str = "gpt-4o"
    traces_file: str | None = None  # the .json to use when a folder holds several
    strip_answer: bool = True  # plain-text completions: cut the final-answer line
    completion_format: str = "auto"  # json: JSON replies; text: plain; auto: by the first "{"

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | None) -> ReleasedMapping:
        if source is None:
            return cls()
        if isinstance(source, Mapping):
            raw: Any = dict(source)
            origin = "released mapping"
        else:
            path = Path(source)
            if not path.is_file():
                raise RBridgeError(f"released-traces mapping file not found: {path}")
            origin = str(path)
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f", line {mark.line + 1}" if mark is not None else ""
                problem = getattr(exc, "problem", None) or first_line(exc)
                raise RBridgeError(f"{path}{where}: not valid YAML or JSON ({problem})") from None
            raw = {} if raw is None else raw
        if not isinstance(raw, Mapping):
            raise RBridgeError(
                f"{origin}: expected mapping keys with field names, got a {type(raw).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            hints = [
                f"{close[0]!r}" + (f" for {key!r}" if len(unknown) > 1 else "")
                for key in unknown
                if (close := difflib.get_close_matches(key, known, n=1))
            ]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise RBridgeError(
                f"{origin}: unknown mapping key(s) {unknown}{hint}; valid keys: {sorted(known)}"
            )
        return cls(**{key: _mapping_value(origin, key, value) for key, value in raw.items()})


def _mapping_value(origin: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> RBridgeError:
        return RBridgeError(f"{origin}: key {key!r}: expected {expected}, got {value!r}")

    if isinstance(getattr(ReleasedMapping, key), tuple):
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad("a field name or a list of field names")
        return tuple(names)
    if key == "strip_answer" and not isinstance(value, bool):
        raise bad("true or false")
    if key == "completion_format" and value not in COMPLETION_FORMATS:
        raise bad(f"one of {list(COMPLETION_FORMATS)}")
    if key == "traces_file" and value is not None and not isinstance(value, str):
        raise bad("a file name in the benchmark's folder")
    if key == "frontier_model" and (not isinstance(value, str) or not value.strip()):
        raise bad("a model name")
    return value


@dataclass
class _Stream:
    """One completion's token rows: (position, file order, raw bytes, logprob)."""

    rows: list[tuple[float, int, bytes, float]]

    def tokens(self) -> tuple[list[str], list[float]]:
        ordered = sorted(self.rows)
        return texts_from_bytes([b for _, _, b, _ in ordered]), [lp for *_, lp in ordered]


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
    token_files = logprob_files(folder, traces_file.stem)
    streams = _read_token_files(token_files, mapping)
    names = [p.name for p in token_files]
    records = [
        _record(entry, n, traces_file, benchmark, mapping, streams, names)
        for n, entry in enumerate(_entries(traces_file))
    ]
    if streams:
        extra = sorted(streams)[:5]
        raise RBridgeError(
            f"released traces: {len(streams)} id(s) have token logprobs but no trace "
            f"in {traces_file.name}, e.g. {extra}; check the mapping's id fields"
        )
    return records


def _record(
    entry: Any,
    n: int,
    traces_file: Path,
    benchmark: str,
    mapping: ReleasedMapping,
    streams: dict[str, _Stream],
    token_file_names: list[str],
) -> TraceRecord:
    where = f"{traces_file} [{n}]"
    if not isinstance(entry, Mapping):
        raise RBridgeError(
            f"{where}: expected a JSON object (a completion with its id and question), got "
            f"{type(entry).__name__}"
        )
    trace_id = str(_pick(entry, mapping.trace_id, "trace_id", where))
    trace_field = _present(entry, mapping.trace, "trace", where)
    completion = entry[trace_field]

    def fail(message: str, fld: str | None) -> RBridgeError:
        return located(where, message, record_id=trace_id, field=fld)

    if not isinstance(completion, str):
        raise fail(f"must be the completion text, got {type(completion).__name__}", trace_field)
    stream = streams.pop(trace_id, None)
    if stream is None:
        raise fail(f"no token logprobs for this id in {token_file_names}", None)
    texts, logprobs = stream.tokens()
    obj: dict[str, Any] = {
        "id": trace_id,
        "benchmark": benchmark,
        "question": str(_pick(entry, mapping.question, "question", where)),
        "frontier_model": mapping.frontier_model,
    }
    answer = _pick(entry, mapping.answer, "answer", where, required=False)
    if answer is not None:
        obj["answer"] = str(answer)
    correct = _pick(entry, mapping.correct, "correct", where, required=False)
    if isinstance(correct, bool):
        obj["correct"] = correct
    # the reply: the completion itself, or (the completion being its decoded reasoning) the
    # text the stream spells
    spelled = "".join(texts)
    reply = completion if looks_like_reply(completion) else spelled
    fmt = mapping.completion_format
    if fmt == "text" or (fmt == "auto" and not looks_like_reply(reply)):
        obj.update(trace=completion, frontier_tokens=_tokens(texts, logprobs))
        record = parse_record(obj, source=where)
        return strip_final_answer(record) if mapping.strip_answer else record
    try:
        mapped = map_reasoning(reply, texts, logprobs)
    except StreamMismatchError as exc:
        raise fail(f"{exc.detail} (rows in {token_file_names})", trace_field) from None
    except ReplyFormatError as exc:
        raise fail(exc.detail, f"{trace_field}.{exc.field}" if exc.field else trace_field) from None
    if reply is spelled and completion not in (spelled, mapped.reply.reasoning):
        raise fail(
            "is neither the JSON reply its logprob stream spells nor that reply's reasoning "
            f"(the stream's reasoning starts {mapped.reply.reasoning[:40]!r}, the field "
            f"{completion[:40]!r})",
            trace_field,
        )
    obj.update(
        trace=mapped.reply.reasoning,
        frontier_tokens=_tokens(mapped.token_texts, mapped.token_logprobs),
        meta=reply_meta(reply, texts, logprobs, mapped),
    )
    return parse_record(obj, source=where)


def _tokens(texts, logprobs) -> list[dict[str, Any]]:
    return [{"text": t, "logprob": lp} for t, lp in zip(texts, logprobs, strict=True)]


def fetch_released(benchmark: str) -> Path:
    """The released traces of one benchmark: from huggingface_hub's cache, else from the hub.

    Without a connection only the cache is asked, so offline users get one line at once instead of
    a minute of retries.
    """
    from huggingface_hub import snapshot_download

    config = CONFIG_OF_BENCHMARK[check_benchmark(benchmark)]
    offline = hub_unreachable()
    try:
        return Path(
            snapshot_download(
                HUB_REPO,
                repo_type="dataset",
                allow_patterns=[f"traces/{config}/*"],
                local_files_only=offline is not None,
            )
        )
    except Exception as exc:  # offline mode, network or auth errors all mean the same to the user
        reason = (
            f"not cached and the hub is unreachable ({offline})" if offline else first_line(exc)
        )
        raise RBridgeError(
            f"no --metadata traces given and the released {HUB_REPO} {benchmark} traces could not "
            f"be fetched: {reason}; pass --metadata traces=FILE (a trace JSONL file or folder) "
            "and, without the hub, data_dir=DIR (benchmark questions laid out like shared/data/)"
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


def logprob_files(folder: Path, stem: str) -> list[Path]:
    """The logprob files of `<stem>.json`, in part order; a gap in a sequence is an error."""
    found = sorted((p, m) for p in folder.glob("*.jsonl") if (m := LOGPROB_FILE.fullmatch(p.name)))
    mine = [(p, m) for p, m in found if m["stem"] == stem]
    if not mine:
        raise RBridgeError(
            f"released traces: no {stem}_logprobs*.jsonl beside {stem}.json in {folder} "
            f"(logprob files there: {[p.name for p, _ in found]})"
        )
    whole = [p for p, m in mine if m["part"] is None]
    parts = [(int(m["part"]), int(m["parts"]), p) for p, m in mine if m["part"] is not None]
    if whole and (parts or len(whole) > 1):
        raise RBridgeError(
            f"released traces: {folder} holds both {[p.name for p in whole]} and other "
            f"logprob files of {stem}; keep one set"
        )
    if whole:
        return whole
    totals = sorted({total for _, total, _ in parts})
    numbers = sorted(number for number, _, _ in parts)
    expected = list(range(1, totals[-1] + 1))
    if len(totals) > 1 or numbers != expected:
        have = ", ".join(p.name for _, _, p in sorted(parts))
        missing = [f"part{i:02d}_of_{totals[-1]:02d}" for i in expected if i not in numbers]
        problem = f"{missing} missing" if missing else "parts repeated or counted differently"
        raise RBridgeError(
            f"released traces: {folder}: the logprob files of {stem} are an incomplete "
            f"sequence: {problem} (found {have})"
        )
    return [p for _, _, p in sorted(parts)]


def _entries(traces_file: Path) -> list[Any]:
    entries = read_json(traces_file)
    if isinstance(entries, dict):
        entries = list(entries.values())
    if not isinstance(entries, list):
        raise RBridgeError(
            f"{traces_file}: expected a JSON array of completions, got {type(entries).__name__}"
        )
    return entries


def _read_token_files(paths: list[Path], mapping: ReleasedMapping) -> dict[str, _Stream]:
    by_trace: dict[str, _Stream] = {}
    order = 0
    for path in paths:
        for n, row in iter_jsonl(path):
            where = f"{path}, line {n}"
            if not isinstance(row, Mapping):
                raise RBridgeError(f"{where}: expected a JSON object")
            trace_id = str(_pick(row, mapping.logprob_trace_id, "logprob_trace_id", where))
            token = _pick(row, mapping.logprob_token, "logprob_token", where)
            value = _pick(row, mapping.logprob_value, "logprob_value", where)
            raw = _pick(row, mapping.logprob_bytes, "logprob_bytes", where, required=False)
            target = by_trace.setdefault(trace_id, _Stream([])).rows
            if isinstance(token, list):  # one row per trace: parallel lists
                if not isinstance(value, list) or len(value) != len(token):
                    raise RBridgeError(f"{where}: token and logprob lists differ in length")
                chunks = raw if isinstance(raw, list) else [None] * len(token)
                for text, lp, chunk in zip(token, value, chunks, strict=False):
                    target.append((order, order, _chunk(text, chunk, where), _number(lp, where)))
                    order += 1
            else:
                pos = _pick(
                    row, mapping.logprob_position, "logprob_position", where, required=False
                )
                position = float(pos) if isinstance(pos, (int, float)) else order
                target.append((position, order, _chunk(token, raw, where), _number(value, where)))
                order += 1
    return by_trace


def _chunk(token: Any, raw: Any, where: str) -> bytes:
    """A token's bytes: its `bytes` list when the row has one, else its text in UTF-8."""
    if raw is not None:
        if not isinstance(raw, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw
        ):
            raise RBridgeError(f"{where}: field 'bytes' must be a list of byte values 0-255")
        return bytes(raw)
    if not isinstance(token, str):
        raise RBridgeError(f"{where}: token {token!r} is not a string")
    return token.encode("utf-8")


def _present(obj: Mapping[str, Any], candidates: tuple[str, ...], key: str, where: str) -> str:
    """The first candidate field present in `obj` (the error says what to pass otherwise)."""
    for name in candidates:
        if name in obj:
            return name
    raise RBridgeError(
        f"{where}: none of the fields {list(candidates)} (mapping key {key!r}) is present; "
        f"the record has {sorted(obj)}. Pass a mapping file with --metadata "
        f"released_mapping=FILE naming the right field"
    )


def _pick(
    obj: Mapping[str, Any], candidates: tuple[str, ...], key: str, where: str, required: bool = True
) -> Any:
    if required:
        return obj[_present(obj, candidates, key, where)]
    return next((obj[name] for name in candidates if name in obj), None)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise RBridgeError(f"{where}: logprob {value!r} is not a number")
    return float(value)


# --- inspect ---------------------------------------------------------------------------------


def inspect_released(root: str | Path, mapping: ReleasedMapping | None = None) -> str:
    """What a copy of the released dataset holds and how it would be read, folder by folder:
    the fields of its completions and rows, a sample row, the name each mapping key would use,
    and the outcome of reading it, so a mismatch is fixed with one mapping file."""
    mapping = mapping or ReleasedMapping()
    root = Path(root)
    base = root / "traces"
    folders = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if not folders:
        raise RBridgeError(
            f"{root}: no traces/<config>/ folders (the {HUB_REPO} layout); pass the folder "
            "that holds traces/"
        )
    benchmark_of = {config: b for b, config in CONFIG_OF_BENCHMARK.items()}
    lines = [f"mapping: {mapping}"]
    for folder in folders:
        lines.append(f"{folder}:")
        try:
            traces_file = _traces_file(folder, mapping)
            entries = _entries(traces_file)
            files = logprob_files(folder, traces_file.stem)
        except RBridgeError as exc:
            lines.append(f"  cannot read: {exc}")
            continue
        entry = next((e for e in entries if isinstance(e, Mapping)), {})
        rows = [r for r in islice(_rows(files), _INSPECTED) if isinstance(r, Mapping)]
        row = rows[0] if rows else {}
        lines += [
            f"  traces file: {traces_file.name}, {len(entries)} completion(s); fields: "
            + _field_types([e for e in entries[:_INSPECTED] if isinstance(e, Mapping)]),
            f"  logprob files: {', '.join(p.name for p in files)}; row fields: "
            + _field_types(rows),
            f"  sample row: {json.dumps(row, ensure_ascii=False)[:300]}",
            "  mapping used:",
        ]
        for key in ("trace_id", "question", "trace", "answer", "correct"):
            lines.append(f"    {key}: {_which(entry, getattr(mapping, key))}")
        for key in ("logprob_trace_id", "logprob_token", "logprob_value", "logprob_position"):
            lines.append(f"    {key}: {_which(row, getattr(mapping, key))}")
        lines.append(f"    logprob_bytes: {_which(row, mapping.logprob_bytes)}")
        benchmark = benchmark_of.get(folder.name)
        if benchmark is None:
            lines.append(f"  not a known config ({sorted(benchmark_of)}); not read")
            continue
        try:
            records = read_released(root, benchmark, mapping)
        except RBridgeError as exc:
            lines.append(f"  reading fails: {exc}")
            continue
        kind = "JSON replies" if any("reasoning_span" in r.meta for r in records) else "plain"
        first = records[0].trace[:80] if records else ""
        lines.append(f"  reads as {benchmark}: {len(records)} record(s) ({kind}); first: {first!r}")
    return "\n".join(lines)


def _rows(files: list[Path]) -> Iterator[Any]:
    for path in files:
        for _, row in iter_jsonl(path):
            yield row


def _field_types(objects: list[Mapping[str, Any]]) -> str:
    kinds: dict[str, set[str]] = {}
    for obj in objects:
        for name, value in obj.items():
            kinds.setdefault(name, set()).add(type(value).__name__)
    return ", ".join(f"{k} ({'|'.join(sorted(v))})" for k, v in sorted(kinds.items())) or "none"


def _which(obj: Mapping[str, Any], candidates: tuple[str, ...]) -> str:
    found = next((name for name in candidates if name in obj), None)
    return repr(found) if found else f"none of {list(candidates)}"
