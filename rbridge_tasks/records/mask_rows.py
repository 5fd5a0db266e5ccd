"""The rows of the authors' span-mask release (`trillionlabs/rbridge-mask`, MIT): one `question`
and one `reasoning` trace with key steps tagged `<span>...</span>` (`span_tags`), ten subsets.

They come from the hub dataset by default, or from a local copy (`--metadata mask_data=PATH`):
a folder holding the dataset's files (a snapshot of the hub repository, or `<subset>.jsonl`
files), or one JSON Lines file of rows (whose optional `subset` field says which task reads a
row). Every bad row ends as one error naming the file, the row and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rbridge_tasks.core.errors import RBridgeError, first_line
from rbridge_tasks.core.jsonl import iter_jsonl
from rbridge_tasks.questions.sources import Source, load_hub
from rbridge_tasks.records.span_tags import strict_spans

HUB_DATASET = "trillionlabs/rbridge-mask"
HUB_SPLIT = "test"
# The subsets with their row counts in the release, in the authors' table order.
SUBSETS = {
    "mmlu-pro": 601,
    "mmlu": 1248,
    "cqa": 486,
    "bbh": 322,
    "kmmlu": 220,
    "arc": 177,
    "arena-hard": 100,
    "math500": 100,
    "gpqa": 100,
    "aime25": 9,
}
OPTION = "--metadata mask_data"
LOCAL_COPY = (
    f"{OPTION}=PATH (a folder with the dataset's files: a snapshot of the {HUB_DATASET} "
    "repository, or <subset>.jsonl files; or one JSONL file of rows with 'question' and "
    "'reasoning')"
)
FIELDS = ("question", "reasoning")
_SUFFIXES = (".jsonl.gz", ".jsonl", ".parquet")
_SHARD = re.compile(r"(?:test[-_])?\d+-of-\d+|test")
_OTHER_SPLITS = ("train", "validation", "dev")


@dataclass(frozen=True)
class MaskRow:
    index: int  # position in the subset: the document's id
    where: str  # "FILE, line N" or "SOURCE, row N", for errors
    question: str
    reasoning: str


def check_subset(subset: str) -> str:
    if subset not in SUBSETS:
        raise RBridgeError(f"unknown span-mask subset {subset!r}; expected one of {list(SUBSETS)}")
    return subset


def load_mask_rows(subset: str, local: str | Path | None = None) -> tuple[list[MaskRow], str]:
    """The subset's rows, in the release's order, and where they came from.

    Parameters
    ----------
    subset : str
        One of `SUBSETS`.
    local : str or Path, optional
        `--metadata mask_data`: a folder of the dataset's files (`subset_files`) or one JSON
        Lines file of rows; None reads the hub dataset.

    Raises
    ------
    RBridgeError
        An unknown subset, a missing or unreadable file, no rows, or a bad row, in one line
        naming the file, the row and the field.
    """
    check_subset(subset)
    if local is None:
        origin = f"{HUB_DATASET} subset {subset!r} ({HUB_SPLIT} split)"
        source = Source(f"{subset}.jsonl", HUB_DATASET, subset, HUB_SPLIT)
        raw = [(f"{origin}, row {i}", row) for i, row in enumerate(load_hub(source, LOCAL_COPY))]
    else:
        path = Path(local).expanduser()
        if path.is_dir():
            files = subset_files(path, subset)
            raw = [item for file in files for item in _file_rows(file)]
            origin = ", ".join(str(f) for f in files)
        elif path.is_file():
            raw, origin = _rows_of_subset(_file_rows(path), subset, path), str(path)
        else:
            raise RBridgeError(f"{OPTION}={local}: no such file or folder")
    if not raw:
        raise RBridgeError(f"{origin}: no rows")
    return [_row(i, where, value) for i, (where, value) in enumerate(raw)], origin


def subset_files(folder: Path, subset: str) -> list[Path]:
    """The files of one subset in a local copy: `<subset>.jsonl` (`.jsonl.gz`, `.parquet`; `-`
    or `_` in the name) at any depth, files under a folder named after the subset (the hub's
    `<subset>/test-00000-of-00001.parquet`), or `<subset>-00000-of-00001.parquet` shards; never
    files of another split."""
    names = {subset, subset.replace("-", "_")}
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        stem = _stem(path.name)
        if stem is None or not path.is_file() or any(p.startswith(".") for p in relative.parts):
            continue
        in_folder = any(part in names for part in relative.parts[:-1])
        if (in_folder or _named(stem, names)) and not stem.startswith(_OTHER_SPLITS):
            found.append(path)
    if not found:
        held = sorted(str(p.relative_to(folder)) for p in folder.iterdir())[:10]
        raise RBridgeError(
            f"{OPTION}={folder}: no file of subset {subset!r} (looked for {subset}.jsonl, "
            f"{subset}.parquet or files under a folder {subset}/; the folder holds {held})"
        )
    return found


def _named(stem: str, names: set[str]) -> bool:
    """`mmlu-pro`, `mmlu_pro`, `mmlu-pro-00000-of-00001`, `mmlu-pro-test`; not `mmlu-pro` for
    the subset `mmlu`."""
    return any(
        stem == name
        or (
            stem[: len(name) + 1] in (f"{name}-", f"{name}_")
            and bool(_SHARD.fullmatch(stem[len(name) + 1 :]))
        )
        for name in names
    )


def _stem(name: str) -> str | None:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _file_rows(path: Path) -> list[tuple[str, Any]]:
    if path.name.endswith(".parquet"):
        import pyarrow.parquet

        try:
            rows = pyarrow.parquet.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
            raise RBridgeError(f"{path}: cannot read it as Parquet ({first_line(exc)})") from exc
        return [(f"{path}, row {i}", row) for i, row in enumerate(rows)]
    return [(f"{path}, line {n}", row) for n, row in iter_jsonl(path)]


def _rows_of_subset(rows: list[tuple[str, Any]], subset: str, path: Path) -> list:
    """A single file serves every task, unless its rows name their subset."""
    named = {row.get("subset") for _, row in rows if isinstance(row, Mapping)} - {None}
    if not named:
        return rows
    names = {subset, subset.replace("-", "_")}
    kept = [(w, row) for w, row in rows if isinstance(row, Mapping) and row.get("subset") in names]
    if not kept:
        raise RBridgeError(
            f"{path}: no row of subset {subset!r} (field 'subset' names {sorted(map(str, named))})"
        )
    return kept


def _row(index: int, where: str, value: Any) -> MaskRow:
    if not isinstance(value, Mapping):
        raise RBridgeError(
            f"{where}: expected an object with 'question' and 'reasoning', got "
            f"{type(value).__name__}"
        )
    for field in FIELDS:
        if field not in value:
            raise RBridgeError(f"{where}, field {field!r}: missing (each row needs {FIELDS})")
        if not isinstance(value[field], str):
            raise RBridgeError(
                f"{where}, field {field!r}: expected text, got {type(value[field]).__name__}"
            )
    if not value["question"].strip():
        raise RBridgeError(f"{where}, field 'question': empty; the question is the proxy's context")
    if not strict_spans(value["reasoning"]).text.strip():
        raise RBridgeError(f"{where}, field 'reasoning': no text to score besides span tags")
    return MaskRow(index, where, value["question"], value["reasoning"])
