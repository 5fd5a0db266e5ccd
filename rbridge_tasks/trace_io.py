"""Reading and writing trace files (the schema is in `records.py`).

Writers never leave a half-written file behind: whole files go through a temporary file and an
atomic rename, and appended records are single `write` calls of complete lines followed by an
fsync, so an interrupted run loses at most the record it was writing.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from rbridge_tasks.errors import RBridgeError, located
from rbridge_tasks.jsonl import iter_jsonl
from rbridge_tasks.records import TraceRecord, parse_record


def iter_traces(path: str | Path, *, require_tokens: bool = True) -> Iterator[TraceRecord]:
    """Validated records of one `.jsonl`/`.jsonl.gz` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise RBridgeError(f"traces file not found: {path}")
    seen: dict[tuple[str, str], int] = {}
    for n, obj in iter_jsonl(path):
        record = parse_record(obj, source=str(path), line=n, require_tokens=require_tokens)
        key = (record.benchmark, record.id)
        if key in seen:
            raise located(
                str(path),
                f"duplicate record: the same benchmark and id are on line {seen[key]}",
                line=n,
                record_id=record.id,
            )
        seen[key] = n
        yield record


def read_traces(path: str | Path, *, require_tokens: bool = True) -> list[TraceRecord]:
    return list(iter_traces(path, require_tokens=require_tokens))


def write_traces(path: str | Path, records: Iterable[TraceRecord]) -> None:
    """Write a whole trace file atomically: readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" else raw
            for record in records:
                stream.write(_line(record))
            if stream is not raw:
                stream.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TraceAppender:
    """Append records to a `.jsonl` file one complete line at a time (resumable long jobs).

    Opening repairs a tail left by a crash mid-line, and `done_ids` tells a resumed job which
    records it can skip.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.suffix == ".gz":
            raise RBridgeError(f"{self.path}: cannot append to a gzip file; write a .jsonl file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        drop_partial_tail(self.path)
        self.done_ids: set[tuple[str, str]] = (
            {(r.benchmark, r.id) for r in iter_traces(self.path, require_tokens=False)}
            if self.path.exists()
            else set()
        )
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: TraceRecord) -> None:
        key = (record.benchmark, record.id)
        if key in self.done_ids:
            raise RBridgeError(
                f"{self.path}: record {record.id!r} ({record.benchmark}) is already there"
            )
        os.write(self._fd, _line(record))
        os.fsync(self._fd)
        self.done_ids.add(key)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> TraceAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _line(record: TraceRecord) -> bytes:
    return (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")


def drop_partial_tail(path: Path) -> None:
    """Cut a final line that has no newline: the record being written when a run died."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)
