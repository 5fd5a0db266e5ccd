"""Reading and writing trace files (the schema is in `records.py`).

Writers never leave a half-written file behind: whole files go through `atomic.atomic_write`,
and appended records are single `write` calls of complete lines followed by an fsync, so an
interrupted run loses at most the record it was writing. An appending job holds an exclusive
lock on its output, checks that an existing file is a trace file before it repairs anything,
validates each record before writing it, and stamps each with the job's settings so a resumed
run with other settings is refused instead of mixing them into one pack.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rbridge_tasks.core.atomic import atomic_write
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import decode_json, iter_jsonl
from rbridge_tasks.questions.sources import BENCHMARK_NAME, BENCHMARK_NAMES
from rbridge_tasks.records.schema import TraceRecord, parse_record

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz")
# A record line as `_line` writes it begins so; a torn last line is a prefix of a record line.
_RECORD_START = b'{"id": '


def iter_traces(
    path: str | Path, *, require_tokens: bool = True, torn_tail_ok: bool = False
) -> Iterator[TraceRecord]:
    """Validated records of one `.jsonl`/`.jsonl.gz` file, in file order."""
    path = Path(path)
    if not path.exists():
        raise RBridgeError(f"traces file not found: {path}")
    seen: dict[tuple[str, str], int] = {}
    # NaN/Infinity literals are read, so that `parse_record` names the record and field.
    for n, obj in iter_jsonl(path, allow_nan=True, torn_tail_ok=torn_tail_ok):
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


def read_pack(path: str | Path, *, require_tokens: bool = True) -> list[TraceRecord]:
    """The records of a trace file, or of a folder of `<benchmark>.jsonl[.gz]` files as
    `--metadata traces=DIR` reads it (each file gives its own benchmark's records; see
    `records.packs.find_records`), so `validate` and `stats` check what `rbridge eval` scores."""
    path = Path(path)
    if not path.is_dir():
        return read_traces(path, require_tokens=require_tokens)
    records = []
    for benchmark, file in pack_files(path).items():
        records += [
            r for r in iter_traces(file, require_tokens=require_tokens) if r.benchmark == benchmark
        ]
    if not records:
        raise RBridgeError(
            f"{path}: a folder of traces must hold <benchmark>.jsonl[.gz] files with records of "
            f"that benchmark (e.g. {', '.join(BENCHMARK_NAMES)}); it has none"
        )
    return records


def pack_files(folder: Path) -> dict[str, Path]:
    """The `<benchmark>.jsonl[.gz]` files of a pack folder, by benchmark (`.jsonl` first)."""
    out: dict[str, Path] = {}
    for suffix in TRACE_SUFFIXES:
        for file in sorted(folder.glob(f"*{suffix}")):
            benchmark = file.name.removesuffix(suffix)
            if file.is_file() and BENCHMARK_NAME.fullmatch(benchmark):
                out.setdefault(benchmark, file)
    return out


def benchmark_file(folder: Path, benchmark: str) -> Path | None:
    """`<benchmark>.jsonl` or, failing that, `<benchmark>.jsonl.gz` in `folder`."""
    return next(
        (
            folder / f"{benchmark}{s}"
            for s in TRACE_SUFFIXES
            if (folder / f"{benchmark}{s}").is_file()
        ),
        None,
    )


def write_traces(path: str | Path, records: Iterable[TraceRecord]) -> None:
    """Write a whole trace file atomically: readers see the old file or the new one, never half.
    A file a job is appending to is refused: the job would go on writing to the replaced file."""
    path = Path(path)
    if path.is_file():
        fd = os.open(path, os.O_RDONLY)
        try:
            _lock(fd, path)
        finally:
            os.close(fd)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" else raw
            for record in records:
                stream.write(_line(record))
            if stream is not raw:
                stream.close()

    atomic_write(path, write)


class TraceAppender:
    """Append records to a `.jsonl` file one complete line at a time (resumable long jobs).

    Opening takes an exclusive lock (a second job on the same output fails at once), reads and
    validates what is there, then repairs a tail left by a crash mid-line; `done_ids` tells a
    resumed job which records it can skip. With `settings=(key, values)`, every record gets the
    values as `meta[key]`, and records already there with other values are refused.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        settings: tuple[str, Mapping[str, Any]] | None = None,
    ):
        self.path = Path(path)
        if self.path.suffix == ".gz":
            raise RBridgeError(f"{self.path}: cannot append to a gzip file; write a .jsonl file")
        self.settings_key, self.settings = (None, None) if settings is None else settings
        if self.settings is not None:  # as it reads back from the file (tuples become lists)
            self.settings = json.loads(json.dumps(dict(self.settings)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _lock(self._fd, self.path)
            self.done_ids = self._resume()
        except BaseException:
            os.close(self._fd)
            raise

    def _resume(self) -> set[tuple[str, str]]:
        tail = check_tail(self._fd, self.path, _RECORD_START)
        done: set[tuple[str, str]] = set()
        for record in iter_traces(self.path, require_tokens=False, torn_tail_ok=True):
            self._check_settings(record)
            done.add((record.benchmark, record.id))
        settle_tail(self._fd, self.path, tail)
        return done

    def _check_settings(self, record: TraceRecord) -> None:
        found = record.meta.get(self.settings_key)
        if self.settings is None or found is None or found == self.settings:
            return
        old = found if isinstance(found, dict) else {}
        differ = [
            f"{k}={old.get(k)!r} there, {self.settings.get(k)!r} now"
            for k in sorted(set(old) | set(self.settings))
            if old.get(k) != self.settings.get(k)
        ]
        raise located(
            str(self.path),
            f"was written with other settings ({'; '.join(differ) or repr(found)}); resuming would "
            "mix them in one pack: re-run with the same settings, or write to another file",
            record_id=record.id,
            field=f"meta.{self.settings_key}",
        )

    def append(self, record: TraceRecord) -> None:
        """Validate (the same rules as every reader) and append one record."""
        key = (record.benchmark, record.id)
        if key in self.done_ids:
            raise RBridgeError(
                f"{self.path}: record {record.id!r} ({record.benchmark}) is already there"
            )
        obj = record.to_json()
        if self.settings is not None:
            obj["meta"] = {**obj.get("meta", {}), self.settings_key: self.settings}
        parse_record(obj, source=f"new record for {self.path}", require_tokens=False)
        append_line(self._fd, _dumps(obj), self.path)
        self.done_ids.add(key)

    def close(self) -> None:
        os.close(self._fd)  # also releases the lock

    def __enter__(self) -> TraceAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def append_line(fd: int, data: bytes, path: Path) -> None:
    """One complete line, fsynced; on a short write (full disk) the file is cut back to where it
    was, so it never ends in half a record."""
    start = os.fstat(fd).st_size
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        if exc.filename is None:
            exc.filename = str(path)
        raise


def check_tail(fd: int, path: Path, record_start: bytes) -> bytes:
    """The bytes after the file's last newline, once they look like the start of a line the job
    writes (each begins with `record_start`); anything else means the file is not the job's
    output, and it is refused before anything in it is touched."""
    tail = _torn_tail(fd)
    if tail and not (tail.startswith(record_start) or record_start.startswith(tail)):
        raise located(
            str(path),
            "exists, does not end with a newline, and its last line is not the start of a "
            "record this job writes: it is not this job's output, so it is left untouched; "
            "choose another output file",
        )
    return tail


def settle_tail(fd: int, path: Path, tail: bytes) -> None:
    """After the complete lines validated: cut a torn last line (the record being written when a
    run died), or end a complete last record that only lacks its newline with one."""
    if not tail:
        return
    try:
        decode_json(tail, str(path))
    except RBridgeError:
        os.ftruncate(fd, os.fstat(fd).st_size - len(tail))
    else:
        append_line(fd, b"\n", path)


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RBridgeError(
            f"{path}: another process is writing this file (it holds its lock); wait for that "
            "job to finish, or write to another file"
        ) from None


def _torn_tail(fd: int) -> bytes:
    """The bytes after the file's last newline (empty when it ends with one or is empty)."""
    size = os.fstat(fd).st_size
    tail = b""
    position = size
    while position > 0:
        step = min(65536, position)
        position -= step
        chunk = os.pread(fd, step, position)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return chunk[cut + 1 :] + tail
        tail = chunk + tail
    return tail


def _line(record: TraceRecord) -> bytes:
    return _dumps(record.to_json())


def _dumps(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def pack_counts(path: Path) -> dict[str, int | None] | None:
    """Records per benchmark that `--metadata traces=PATH` can serve, found without validating
    them: the lines of a folder's `<benchmark>.jsonl[.gz]` files (None for a released
    `traces/<config>/` folder, not counted), or the `benchmark` fields of a file's lines. None
    for a damaged file, so that the full read names the damage.
    """
    if path.is_dir():
        from rbridge_tasks.records.released import CONFIG_OF_BENCHMARK

        counts: dict[str, int | None] = {}
        for benchmark, file in pack_files(path).items():
            mine = _benchmark_counts(file)
            counts[benchmark] = None if mine is None else mine.get(benchmark, 0)
        for benchmark, config in CONFIG_OF_BENCHMARK.items():
            if benchmark not in counts and (path / "traces" / config).is_dir():
                counts[benchmark] = None
        return counts
    found = _benchmark_counts(path)
    return None if found is None else dict(found)


def _benchmark_counts(path: Path) -> dict[str, int] | None:
    counts: dict[str, int] = {}
    try:
        for _, obj in iter_jsonl(path, allow_nan=True):
            if isinstance(obj, Mapping) and isinstance(obj.get("benchmark"), str):
                counts[obj["benchmark"]] = counts.get(obj["benchmark"], 0) + 1
    except RBridgeError:
        return None
    return counts
