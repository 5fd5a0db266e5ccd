"""Reader for the released `trillionlabs/rBridge` traces (GPT-4o traces + token logprobs).

Files. `traces/<config>/` holds a traces file (`*.json`: the completions, as a JSON array or as
an object keyed by id) and its logprob files (`*.jsonl` with `_logprobs` in the name). A logprob
file belongs to the traces file whose stem is the logprob file's name without `.jsonl`,
`_logprobs` and `_partNN_of_MM`: `gpt4o_s1_new_logprobs_part01_of_03.jsonl` to
`gpt4o_s1_new.json`, `gpt4o_s1_logprobs_part01_of_03_merged.jsonl` to `gpt4o_s1_merged.json`
(MATH-500). A folder holding exactly one traces file and one set of logprob files pairs them
whatever their names. Every part of a set must be there.

Fields. The keys of the files are not documented publicly, so each field the reader needs is a
list of candidate names (`ReleasedMapping`; a mapping file overrides it, and dotted names reach
into nested objects, e.g. `response.body.choices.0.logprobs.content`). Each is resolved once per
file: the first candidate present, with a value of the right type, in every completion (or row);
for the record id, the first whose values are also unique. Rows are joined to completions on the
pair of id fields whose values actually match: any id candidate of the rows against the
completions' id candidates, the keys of a keyed traces file, or the completions' positions.
Row layouts: one row per token (OpenAI's token object `token`/`logprob`/`bytes`/`top_logprobs`
plus an id), one row per completion holding a list of token objects (the Batch API's
`response.body.choices.0.logprobs.content` among the candidates) or parallel lists, and rows
keyed by id (`{"<id>": [token objects]}`). `bytes`, when present, gives the token texts (a
character split over byte tokens goes to the token that completes it, `token_text`).
Keys that match no candidate fail once, listing the keys found and the two ways out: `rbridge
traces import --format released --inspect DIR` and a mapping file.

Text. A completion that is a JSON reply (the paper's prompt), or its decoded `reasoning` while the
stream spells the reply, has a stream covering the whole reply: the trace is the decoded
`reasoning`, each character's confidence carried through the JSON escapes
(`json_reply`), and the raw reply and stream stay in `meta`. A plain-text completion's
stream spells the completion, whose final-answer line is stripped.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from rbridge_tasks.core.errors import RBridgeError, first_line, located
from rbridge_tasks.core.hub import hub_unreachable
from rbridge_tasks.core.jsonl import MISSING, field_at, iter_jsonl, read_json
from rbridge_tasks.questions.sources import check_benchmark
from rbridge_tasks.records.answer_lines import strip_final_answer
from rbridge_tasks.records.json_reply import (
    ReplyFormatError,
    StreamMismatchError,
    looks_like_reply,
    map_reasoning,
    reply_meta,
)
from rbridge_tasks.records.schema import TraceRecord, parse_record
from rbridge_tasks.records.token_text import texts_from_bytes

logger = logging.getLogger(__name__)

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
# Pseudo-field names for ids that are not fields: the key of a traces file that is a JSON object
# keyed by id, and a completion's 0-based position in its traces file.
KEY, POSITION = "(key)", "(position)"
_LOGPROB_FILE = re.compile(r"(?P<head>.+?)_logprobs(?P<tail>.*)\.jsonl")
_PART = re.compile(r"_part(?P<part>\d+)_of_(?P<parts>\d+)")
_INSPECTED = 50  # completions whose fields `inspect_released` lists
_INSPECTED_ROWS = 200  # rows of the first logprob file it resolves the row fields on
_SHOWN_KEYS = 40


@dataclass(frozen=True)
class ReleasedMapping:
    """Candidate field names, first match wins; a mapping file may give one name or a list."""

    trace_id: tuple[str, ...] = (
        "unique_id",
        "task_id",
        "question_id",
        "id",
        "idx",
        "index",
        "sample_idx",
        KEY,
    )
    question: tuple[str, ...] = ("question", "problem", "prompt", "input", "query")
    trace: tuple[str, ...] = (
        "response",
        "completion",
        "output",
        "generation",
        "model_output",
        "raw_response",
        "text",
        "content",
        "response.body.choices.0.message.content",
        "choices.0.message.content",
        "message.content",
        "reasoning",
    )
    answer: tuple[str, ...] = (
        "final_answer",
        "pred",
        "prediction",
        "extracted_answer",
        "answer_pred",
        "model_answer",
    )
    correct: tuple[str, ...] = ("correct", "is_correct")
    logprob_trace_id: tuple[str, ...] = (
        "custom_id",
        "sample_idx",
        "id",
        "idx",
        "question_id",
        "task_id",
        "unique_id",
        "trace_id",
        "sample_id",
        "index",
    )
    logprob_list: tuple[str, ...] = (
        "response.body.choices.0.logprobs.content",
        "choices.0.logprobs.content",
        "logprobs.content",
        "logprobs",
        "content",
        "tokens",
        "token_logprobs",
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
        """The mapping from a YAML/JSON file or a dict; None gives the defaults (the authors'
        layout as released). Keys not given keep their defaults.

        Raises
        ------
        RBridgeError
            A missing or unreadable file, a file that is not a mapping, an unknown key or a
            value of the wrong type, each named with the file (and line where YAML says).
        """
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
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n.strip() for n in names)
        ):
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


# --- reading -----------------------------------------------------------------------------------


def read_released(
    root: str | Path, benchmark: str, mapping: ReleasedMapping | None = None
) -> list[TraceRecord]:
    """Trace records for one benchmark from a local copy of the released dataset.

    `root` is the dataset's top folder (holding `traces/`); `mapping` names the fields where
    they differ from the defaults. Records come in the traces file's order, with frontier
    tokens where a logprob stream belongs to the completion.

    Raises
    ------
    RBridgeError
        An unknown benchmark, no `traces/<config>/` folder, missing parts of a logprob set,
        fields that no candidate name matches, or a stream that does not spell its completion,
        each naming the file (and record and field where there is one).
    """
    check_benchmark(benchmark)
    mapping = mapping or ReleasedMapping()
    root = Path(root)
    folder = root / "traces" / CONFIG_OF_BENCHMARK[benchmark]
    if not folder.is_dir():
        raise RBridgeError(
            f"released traces: folder not found: {folder} (expected the "
            f"{HUB_REPO} layout traces/<config>/...)"
        )
    traces_file, token_files = released_files(folder, mapping)
    completions = _Completions(traces_file)
    names = _completion_fields(completions, mapping, root)
    streams = _read_streams(token_files, completions, names, mapping, root)
    file_names = [p.name for p in token_files]
    return [
        _record(completions, n, names, benchmark, mapping, streams.get(n), file_names)
        for n in range(len(completions.entries))
    ]


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


# --- files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogprobFile:
    path: Path
    stem: str  # the stem of the traces file it belongs to
    part: int | None
    parts: int | None


def _logprob_file(path: Path) -> _LogprobFile | None:
    match = _LOGPROB_FILE.fullmatch(path.name)
    if match is None:
        return None
    tail = match["tail"]
    part = _PART.search(tail)
    if part is None:
        return _LogprobFile(path, match["head"] + tail, None, None)
    rest = tail[: part.start()] + tail[part.end() :]
    return _LogprobFile(path, match["head"] + rest, int(part["part"]), int(part["parts"]))


def released_files(folder: Path, mapping: ReleasedMapping) -> tuple[Path, list[Path]]:
    """A config folder's traces file and its logprob files in part order (module docstring)."""
    traces = sorted(folder.glob("*.json"))
    sets: dict[str, list[_LogprobFile]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        if (found := _logprob_file(path)) is not None:
            sets.setdefault(found.stem, []).append(found)
    listing = (
        f"traces files there: {[p.name for p in traces]}, logprob files: "
        f"{[f.path.name for group in sets.values() for f in group]}"
    )
    if mapping.traces_file:
        traces_file = folder / mapping.traces_file
        if not traces_file.is_file():
            raise RBridgeError(f"released traces: {traces_file} not found (mapping 'traces_file')")
    elif len(traces) == 1:
        traces_file = traces[0]
    else:
        paired = [p for p in traces if p.stem in sets]
        if len(paired) != 1:
            raise RBridgeError(
                f"released traces: expected one .json traces file with its logprob files in "
                f"{folder} ({listing}); name one with the mapping key 'traces_file'"
            )
        traces_file = paired[0]
    own = sets.get(traces_file.stem)
    if own is None and len(traces) == 1 and len(sets) == 1:
        (own,) = sets.values()
    if own is None:
        raise RBridgeError(
            f"released traces: {folder}: no logprob files belong to {traces_file.name} ({listing});"
            " a logprob file belongs to the traces file whose stem is its name without `.jsonl`, "
            f"`_logprobs` and `_partNN_of_MM`, e.g. {traces_file.stem}_logprobs_part01_of_03.jsonl"
        )
    return traces_file, _in_part_order(folder, own)


def _in_part_order(folder: Path, files: list[_LogprobFile]) -> list[Path]:
    """A whole file, or a complete sequence of parts; a gap in a sequence is an error."""
    stem = files[0].stem
    whole = [f.path for f in files if f.part is None]
    parts = sorted((f.part, f.parts, f.path) for f in files if f.part is not None)
    if whole and (parts or len(whole) > 1):
        raise RBridgeError(
            f"released traces: {folder} holds both {[p.name for p in whole]} and other "
            f"logprob files of {stem}; keep one set"
        )
    if whole:
        return whole
    totals = sorted({total for _, total, _ in parts})
    numbers = [number for number, _, _ in parts]
    expected = list(range(1, totals[-1] + 1))
    if len(totals) > 1 or numbers != expected:
        have = ", ".join(p.name for *_, p in parts)
        missing = [f"part{i:02d}_of_{totals[-1]:02d}" for i in expected if i not in numbers]
        problem = f"{missing} missing" if missing else "parts repeated or counted differently"
        raise RBridgeError(
            f"released traces: {folder}: the logprob files of {stem} are an incomplete "
            f"sequence: {problem} (found {have})"
        )
    return [p for *_, p in parts]


# --- fields ------------------------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and bool(value.strip())
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, dict) for t in value)


# A field's values over the objects of one file, produced lazily so that a candidate the first
# objects lack is dismissed without reading the rest.
Column = Callable[[str], Iterable[Any]]


def _resolve(
    column: Column, candidates: Sequence[str], accept: Callable[[Any], bool], unique: bool = False
) -> str | None:
    """The first candidate whose value every object has and `accept`s (`unique`: all differ)."""
    for name in candidates:
        if all(accept(v) for v in column(name)):
            if not unique:
                return name
            ids = [str(v) for v in column(name)]
            if len(set(ids)) == len(ids):
                return name
    return None


def _resolve_optional(column: Column, candidates: Sequence[str]) -> str | None:
    """The first candidate that some object has (objects without it read as None)."""
    for name in candidates:
        if any(v is not MISSING and v is not None for v in column(name)):
            return name
    return None


def _require(
    column: Column,
    key: str,
    candidates: Sequence[str],
    accept: Callable[[Any], bool],
    expected: str,
    where: Callable[[int], str],
    what: str,
    unique: bool = False,
) -> str | None:
    """The candidate that resolves `key`; None when no object has any of them (the caller lists
    it as not recognised). A candidate some objects have and others lack, hold as the wrong type
    or repeat (ids) is an error naming the first such object and the field."""
    name = _resolve(column, candidates, accept, unique)
    if name is not None:
        return name
    best: tuple[int, str, int, str] | None = None
    for candidate in candidates:
        values = list(column(candidate))
        good = [accept(v) for v in values]
        count = sum(good)
        if not count:
            continue
        if all(good):  # only uniqueness failed: name the first repeated id
            seen: dict[str, int] = {}
            for n, v in enumerate(values):
                if (text := str(v)) in seen:
                    raise located(
                        where(n),
                        f"repeats the id {text!r} of {where(seen[text])}; ids must be unique "
                        f"(mapping key {key!r})",
                        field=candidate,
                    )
                seen[text] = n
        bad = good.index(False)
        value = values[bad]
        why = "missing" if value is MISSING else f"is {json.dumps(value)[:40]}"
        if best is None or count > best[0]:
            best = (count, candidate, bad, why)
    if best is None:
        return None
    _, candidate, bad, why = best
    raise located(
        where(bad),
        f"{why}; expected {expected} (mapping key {key!r}; the other {what} have it)",
        field=candidate,
    )


def _not_recognised(
    source: str, what: str, objects: Sequence[Any], missing: list[str], root: Path
) -> RBridgeError:
    """The one error for keys that match no candidate: the keys found, and the ways out."""
    keys = sorted({str(k) for obj in objects if isinstance(obj, Mapping) for k in obj})
    shown = keys[:_SHOWN_KEYS] + (["..."] if len(keys) > _SHOWN_KEYS else [])
    return RBridgeError(
        f"{source}: the {what}' keys are not recognised: {'; '.join(missing)}. The {what} have "
        f"the keys {shown}. See how each folder reads with `rbridge traces import --format "
        f"released --inspect {root}`, then name the fields in a mapping file (JSON or YAML, "
        "e.g. `trace: my_field`; dotted names reach nested fields) passed with --metadata "
        "released_mapping=FILE, or --mapping FILE for `rbridge traces import`"
    )


class _Completions:
    """The completions of a traces file: a JSON array, or an object keyed by id (`keys`)."""

    def __init__(self, path: Path):
        data = read_json(path)
        self.keys: list[str] | None = None
        if isinstance(data, Mapping):
            self.keys = [str(k) for k in data]
            data = list(data.values())
        if not isinstance(data, list):
            raise RBridgeError(
                f"{path}: expected a JSON array of completions or an object of them keyed by id, "
                f"got {type(data).__name__}"
            )
        if not data:
            raise RBridgeError(f"{path}: holds no completions")
        self.path = path
        self.entries: list[Mapping[str, Any]] = data
        for n, entry in enumerate(data):
            if not isinstance(entry, Mapping):
                raise RBridgeError(
                    f"{self.where(n)}: expected a JSON object (a completion with its id and "
                    f"question), got {type(entry).__name__}"
                )

    def where(self, n: int) -> str:
        return f"{self.path} [{n if self.keys is None else repr(self.keys[n])}]"

    def value(self, n: int, name: str) -> Any:
        if name == KEY:
            return MISSING if self.keys is None else self.keys[n]
        if name == POSITION:
            return n
        return field_at(self.entries[n], name)

    def column(self, name: str) -> Iterator[Any]:
        return (self.value(n, name) for n in range(len(self.entries)))


@dataclass(frozen=True)
class _CompletionFields:
    """The field each mapping key resolved to in one traces file, and the join candidates."""

    trace_id: str
    question: str
    trace: str
    answer: str | None
    correct: str | None
    join: dict[str, dict[str, int]]  # id field -> id -> completion index


_REQUIRED = (
    ("trace_id", _is_id, "a string or an integer"),
    ("question", _is_text, "a string"),
    ("trace", _is_text, "the completion text"),
)


def _completion_fields(
    completions: _Completions, mapping: ReleasedMapping, root: Path
) -> _CompletionFields:
    column = completions.column
    resolved: dict[str, str] = {}
    missing: list[str] = []
    for key, accept, expected in _REQUIRED:
        candidates = getattr(mapping, key)
        name = _require(
            column,
            key,
            candidates,
            accept,
            expected,
            completions.where,
            "completions",
            unique=key == "trace_id",
        )
        if name is None:
            missing.append(_tried(mapping, key))
        else:
            resolved[key] = name
    if missing:
        raise _not_recognised(
            str(completions.path), "completions", completions.entries, missing, root
        )
    join: dict[str, dict[str, int]] = {}
    for name in dict.fromkeys(
        (resolved["trace_id"], *mapping.trace_id, *mapping.logprob_trace_id, KEY, POSITION)
    ):
        if all(_is_id(v) for v in column(name)):
            ids = {str(v): n for n, v in enumerate(column(name))}
            if len(ids) == len(completions.entries):
                join[name] = ids
    return _CompletionFields(
        trace_id=resolved["trace_id"],
        question=resolved["question"],
        trace=resolved["trace"],
        answer=_resolve_optional(column, mapping.answer),
        correct=_resolve_optional(column, mapping.correct),
        join=join,
    )


# --- logprob rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowLayout:
    """How one logprob file holds its tokens, with the field names resolved for it."""

    kind: str  # "token", "lists", "objects" or "keyed" (see `describe`)
    trace_ids: tuple[str, ...]  # every id candidate all rows have (the join picks one)
    tokens: str | None  # "objects": the field holding the token objects
    token: str
    value: str
    position: str | None
    bytes: str | None

    def describe(self) -> str:
        return {
            "token": "one row per token",
            "lists": "one row per completion holding parallel lists",
            "objects": f"one row per completion, its token objects under {self.tokens!r}",
            "keyed": 'rows keyed by id: {"<id>": [token objects]}',
        }[self.kind]


_ROW_KEYS = (
    "logprob_trace_id",
    "logprob_list",
    "logprob_token",
    "logprob_value",
    "logprob_position",
    "logprob_bytes",
)


def _objects_column(objects: Sequence[Any]) -> Column:
    return lambda name: (field_at(obj, name) for obj in objects)


def _tried(mapping: ReleasedMapping, key: str) -> str:
    return f"no {key} (tried {list(getattr(mapping, key))})"


def _row_layout(
    source: str,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    mapping: ReleasedMapping,
    root: Path,
) -> _RowLayout:
    """The layout of one file's rows (line number, row), each field resolved once for the file."""
    objects = [row for _, row in rows]

    def row_where(n: int) -> str:
        return f"{source}, line {rows[n][0]}"

    def token_fields(tokens: list[tuple[int, int, Any]], what: str) -> tuple[str, str, str | None]:
        """Fields of the token objects (row index, index in the row, object) of the file."""
        column = _objects_column([t for *_, t in tokens])

        def where(k: int) -> str:
            return f"{row_where(tokens[k][0])}, token {tokens[k][1]}"

        token = _require(
            column, "logprob_token", mapping.logprob_token, _is_text, "a string", where, what
        )
        value = _require(
            column, "logprob_value", mapping.logprob_value, _is_number, "a number", where, what
        )
        if token is None or value is None:
            missing = [
                _tried(mapping, key)
                for key, name in (("logprob_token", token), ("logprob_value", value))
                if name is None
            ]
            raise _not_recognised(source, what, [t for *_, t in tokens], missing, root)
        return token, value, _resolve_optional(column, mapping.logprob_bytes)

    known = {name.split(".")[0] for key in _ROW_KEYS for name in getattr(mapping, key)}
    if all(
        row and not known.intersection(row) and all(map(_is_token_list, row.values()))
        for row in objects
    ):
        tokens = [
            (n, k, t)
            for n, row in enumerate(objects)
            for value in row.values()
            for k, t in enumerate(value)
        ]
        token, value, raw = token_fields(tokens, "token objects")
        return _RowLayout("keyed", (), None, token, value, None, raw)
    column = _objects_column(objects)
    first_id = _require(
        column,
        "logprob_trace_id",
        mapping.logprob_trace_id,
        _is_id,
        "a string or an integer",
        row_where,
        "rows",
    )
    trace_ids = tuple(n for n in mapping.logprob_trace_id if all(map(_is_id, column(n))))
    missing = [] if first_id else [_tried(mapping, "logprob_trace_id")]
    listed = _resolve(column, mapping.logprob_list, _is_token_list)
    if listed is not None and trace_ids:
        tokens = [
            (n, k, t) for n, row in enumerate(objects) for k, t in enumerate(field_at(row, listed))
        ]
        token, value, raw = token_fields(tokens, f"token objects under {listed!r}")
        return _RowLayout("objects", trace_ids, listed, token, value, None, raw)
    token = _require(
        column,
        "logprob_token",
        mapping.logprob_token,
        lambda v: isinstance(v, (str, list)),
        "a string (or a list of them)",
        row_where,
        "rows",
    )
    value = _require(
        column,
        "logprob_value",
        mapping.logprob_value,
        lambda v: _is_number(v) or isinstance(v, list),
        "a number (or a list of them)",
        row_where,
        "rows",
    )
    missing += [
        _tried(mapping, key)
        for key, name in (("logprob_token", token), ("logprob_value", value))
        if name is None
    ]
    if missing or token is None or value is None:
        raise _not_recognised(source, "logprob rows", objects, missing, root)
    kind = "lists" if isinstance(field_at(objects[0], token), list) else "token"
    position = None
    if kind == "token":
        position = _require(
            column,
            "logprob_position",
            mapping.logprob_position,
            _is_number,
            "a number",
            row_where,
            "rows",
        )
    raw = _resolve_optional(column, mapping.logprob_bytes)
    return _RowLayout(kind, trace_ids, None, token, value, position, raw)


@dataclass
class _Stream:
    """One completion's tokens: (position, file order, raw bytes, logprob)."""

    rows: list[tuple[float, int, bytes, float]]

    def tokens(self) -> tuple[list[str], list[float]]:
        ordered = sorted(self.rows)
        return texts_from_bytes([b for _, _, b, _ in ordered]), [lp for *_, lp in ordered]


def _file_rows(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    rows = []
    for n, row in iter_jsonl(path):
        if not isinstance(row, Mapping):
            raise located(
                str(path),
                "expected a JSON object (a token row, or a completion's tokens), got "
                f"{type(row).__name__}",
                line=n,
            )
        rows.append((n, row))
    return rows


def _read_streams(
    files: list[Path],
    completions: _Completions,
    names: _CompletionFields,
    mapping: ReleasedMapping,
    root: Path,
) -> dict[int, _Stream]:
    """Each completion's token stream (by completion index), read file by file. A file none of
    whose ids matches a completion (a part holding only streams without a completion) is read
    last, joined on the id fields the other files were joined on."""
    streams: dict[int, _Stream] = {}
    orphans: dict[str, None] = {}
    joined: list[tuple[str, str]] = []
    order = 0

    def read(path: Path, second_round: bool) -> bool:
        nonlocal order
        rows = _file_rows(path)
        if not rows:
            return True
        layout = _row_layout(str(path), rows, mapping, root)
        row_ids = _row_ids(rows, layout)
        pair = _join(row_ids, names, joined if second_round else [])
        if pair is None:
            if second_round:
                raise _no_match(path, row_ids, completions, names, root)
            return False
        joined.append(pair)
        row_field, completion_field = pair
        lookup = names.join[completion_field]
        for n, row in rows:
            where = f"{path}, line {n}"
            if layout.kind == "keyed":
                items: list[tuple[str, Any]] = [(str(k), v) for k, v in row.items()]
            else:
                items = [(str(field_at(row, row_field)), row)]
            for trace_id, data in items:
                index = lookup.get(trace_id)
                if index is None:
                    orphans[trace_id] = None
                    continue
                target = streams.setdefault(index, _Stream([])).rows
                for position, chunk, logprob in _tokens_of(data, layout, where):
                    target.append((order if position is None else position, order, chunk, logprob))
                    order += 1
        return True

    deferred = [path for path in files if not read(path, second_round=False)]
    for path in deferred:
        read(path, second_round=True)
    if orphans:
        logger.warning(
            "released traces: %d id(s) in %s have token logprobs but no completion in %s, "
            "e.g. %s; they are left out",
            len(orphans),
            [p.name for p in files],
            completions.path.name,
            list(orphans)[:5],
        )
    return streams


def _tokens_of(
    data: Any, layout: _RowLayout, where: str
) -> list[tuple[float | None, bytes, float]]:
    """(position, bytes, logprob) of each token in one row (or one id's tokens)."""
    if layout.kind in ("keyed", "objects"):
        tokens = data if layout.tokens is None else field_at(data, layout.tokens)
        out = []
        for k, obj in enumerate(tokens):
            at = f"{where}, token {k}"
            raw = field_at(obj, layout.bytes) if layout.bytes else None
            chunk = _chunk(field_at(obj, layout.token), raw, at, layout.bytes)
            out.append((None, chunk, _number(field_at(obj, layout.value), at, layout.value)))
        return out
    text, value = field_at(data, layout.token), field_at(data, layout.value)
    raw = field_at(data, layout.bytes) if layout.bytes else None
    if layout.kind == "lists":
        if not isinstance(text, list) or not isinstance(value, list) or len(value) != len(text):
            raise RBridgeError(
                f"{where}: fields {layout.token!r} and {layout.value!r} must be lists of equal "
                "length (one row per completion)"
            )
        chunks = raw if isinstance(raw, list) and len(raw) == len(text) else [None] * len(text)
        return [
            (None, _chunk(t, c, where, layout.bytes), _number(lp, where, layout.value))
            for t, c, lp in zip(text, chunks, value, strict=True)
        ]
    pos = field_at(data, layout.position) if layout.position else None
    position = float(pos) if _is_number(pos) else None
    return [(position, _chunk(text, raw, where, layout.bytes), _number(value, where, layout.value))]


def _row_ids(rows: list[tuple[int, Mapping[str, Any]]], layout: _RowLayout) -> dict[str, set[str]]:
    """Each id field of the rows (the keys, for rows keyed by id) with its values."""
    if layout.kind == "keyed":
        return {KEY: {str(key) for _, row in rows for key in row}}
    return {f: {str(field_at(row, f)) for _, row in rows} for f in layout.trace_ids}


def _join(
    row_ids: dict[str, set[str]], names: _CompletionFields, earlier: list[tuple[str, str]]
) -> tuple[str, str] | None:
    """The (row id field, completion id field) whose values match: every row id found first,
    then the most ids found, then the candidates' order. When none matches, the first of the
    `earlier` pairs that the rows have (their ids then all lack a completion); else None."""
    best: tuple[tuple[bool, int], str, str] | None = None
    for row_field, ids in row_ids.items():
        for completion_field, lookup in names.join.items():
            matched = sum(i in lookup for i in ids)
            score = (matched == len(ids), matched)
            if matched and (best is None or score > best[0]):
                best = (score, row_field, completion_field)
    if best is not None:
        return best[1], best[2]
    return next((pair for pair in earlier if pair[0] in row_ids), None)


def _no_match(
    path: Path,
    row_ids: dict[str, set[str]],
    completions: _Completions,
    names: _CompletionFields,
    root: Path,
) -> RBridgeError:
    rows_say = "; ".join(f"{f} {sorted(ids)[:3]}" for f, ids in row_ids.items())
    completions_say = "; ".join(f"{f} {list(ids)[:3]}" for f, ids in names.join.items())
    return RBridgeError(
        f"{path}: no id of its rows matches a completion of {completions.path.name} (rows: "
        f"{rows_say}; completions: {completions_say}). See the fields with `rbridge traces "
        f"import --format released --inspect {root}` and name the id fields in a mapping file "
        "(logprob_trace_id for the rows, trace_id for the completions) passed with --metadata "
        "released_mapping=FILE, or --mapping FILE for `rbridge traces import`"
    )


def _chunk(token: Any, raw: Any, where: str, bytes_field: str | None) -> bytes:
    """A token's bytes: its byte list when it has one (OpenAI writes null for none), else its
    text in UTF-8."""
    if raw is not None and raw is not MISSING:
        if not isinstance(raw, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw
        ):
            raise RBridgeError(
                f"{where}: field {bytes_field!r} must be a list of byte values 0-255"
            )
        return bytes(raw)
    if not isinstance(token, str):
        raise RBridgeError(f"{where}: token {token!r} is not a string")
    return token.encode("utf-8")


def _number(value: Any, where: str, field: str) -> float:
    if not _is_number(value) or math.isnan(value):
        raise RBridgeError(f"{where}: field {field!r}: logprob {value!r} is not a number")
    return float(value)


# --- records -----------------------------------------------------------------------------------


def _record(
    completions: _Completions,
    n: int,
    names: _CompletionFields,
    benchmark: str,
    mapping: ReleasedMapping,
    stream: _Stream | None,
    token_file_names: list[str],
) -> TraceRecord:
    where = completions.where(n)
    trace_id = str(completions.value(n, names.trace_id))
    trace_field = names.trace
    completion = completions.value(n, trace_field)

    def fail(message: str, fld: str | None) -> RBridgeError:
        return located(where, message, record_id=trace_id, field=fld)

    if stream is None:
        raise fail(f"no token logprobs for this id in {token_file_names}", None)
    texts, logprobs = stream.tokens()
    obj: dict[str, Any] = {
        "id": trace_id,
        "benchmark": benchmark,
        "question": completions.value(n, names.question),
        "frontier_model": mapping.frontier_model,
    }
    answer = completions.value(n, names.answer) if names.answer else None
    if answer is not None and answer is not MISSING:
        obj["answer"] = answer if isinstance(answer, str) else json.dumps(answer)
    correct = completions.value(n, names.correct) if names.correct else None
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


def _tokens(texts: Sequence[str], logprobs: Sequence[float]) -> list[dict[str, Any]]:
    return [{"text": t, "logprob": lp} for t, lp in zip(texts, logprobs, strict=True)]


# --- inspect -----------------------------------------------------------------------------------


def inspect_released(root: str | Path, mapping: ReleasedMapping | None = None) -> str:
    """What a copy of the released dataset holds and how it would be read, folder by folder:
    the fields of its completions and rows, a sample row, the field each mapping key resolves
    to, the join, and the outcome of reading it, so a mismatch is fixed with one mapping file."""
    mapping = mapping or ReleasedMapping()
    root = Path(root)
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise RBridgeError(
            f"{root}: {what}; pass the folder that holds traces/ (a local copy of the {HUB_REPO} "
            "dataset)"
        )
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
        lines += _inspect_folder(root, folder, mapping)
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


def _inspect_folder(root: Path, folder: Path, mapping: ReleasedMapping) -> list[str]:
    try:
        traces_file, files = released_files(folder, mapping)
        completions = _Completions(traces_file)
    except RBridgeError as exc:
        return [f"  cannot read: {exc}"]
    shape = "a JSON object keyed by id" if completions.keys is not None else "a JSON array"
    lines = [
        f"  traces file: {traces_file.name}, {len(completions.entries)} completion(s) ({shape}); "
        f"fields: {_field_types(completions.entries[:_INSPECTED])}",
        "  completion fields used:",
    ]
    column = completions.column
    for key, accept, _ in _REQUIRED:
        found = _resolve(column, getattr(mapping, key), accept, unique=key == "trace_id")
        lines.append(f"    {key}: {_shown(found, getattr(mapping, key))}")
    for key in ("answer", "correct"):
        found = _resolve_optional(column, getattr(mapping, key))
        lines.append(f"    {key}: {_shown(found, getattr(mapping, key))}")
    sampled, rows = files[0], []
    try:
        for sampled in files:  # the first file with rows
            if rows := _file_rows(sampled)[:_INSPECTED_ROWS]:
                break
    except RBridgeError as exc:
        return [*lines, f"  cannot read the logprob files: {exc}"]
    sample = [row for _, row in rows]
    lines += [
        f"  logprob files: {', '.join(p.name for p in files)}; row fields: {_field_types(sample)}",
        f"  sample row: {json.dumps(sample[0], ensure_ascii=False)[:300] if sample else 'none'}",
    ]
    if not sample:
        return lines
    try:
        layout = _row_layout(str(sampled), rows, mapping, root)
    except RBridgeError as exc:
        return [*lines, f"  rows: not recognised: {exc}"]
    lines += [
        f"  rows: {layout.describe()}; row fields used:",
        f"    logprob_trace_id: {_shown_all(layout.trace_ids, mapping.logprob_trace_id)}",
    ]
    if layout.tokens is not None:
        lines.append(f"    logprob_list: {layout.tokens!r}")
    lines += [
        f"    logprob_token: {layout.token!r}",
        f"    logprob_value: {layout.value!r}",
        f"    logprob_position: {_shown(layout.position, mapping.logprob_position)}",
        f"    logprob_bytes: {_shown(layout.bytes, mapping.logprob_bytes)}",
    ]
    try:
        names = _completion_fields(completions, mapping, root)
    except RBridgeError as exc:
        return [*lines, f"  join: {exc}"]
    row_ids = _row_ids(rows, layout)
    pair = _join(row_ids, names, [])
    if pair is None:
        return [*lines, f"  join: {_no_match(sampled, row_ids, completions, names, root)}"]
    row_field, completion_field = pair
    lines.append(f"  join: rows' {row_field!r} = completions' {completion_field!r}")
    return lines


def _field_types(objects: Sequence[Mapping[str, Any]]) -> str:
    kinds: dict[str, set[str]] = {}
    for obj in objects:
        for name, value in obj.items():
            kinds.setdefault(str(name), set()).add(type(value).__name__)
    return ", ".join(f"{k} ({'|'.join(sorted(v))})" for k, v in sorted(kinds.items())) or "none"


def _shown(found: str | None, candidates: Sequence[str]) -> str:
    return repr(found) if found else f"none of {list(candidates)}"


def _shown_all(found: Sequence[str], candidates: Sequence[str]) -> str:
    if not found:
        return "the row keys" if not candidates else f"none of {list(candidates)}"
    return ", ".join(map(repr, found))
