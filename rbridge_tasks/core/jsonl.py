"""Reading JSON files and JSON Lines files (`.jsonl`, gzip-compressed or not), strictly.

Every fault a file can have ends as one `RBridgeError` naming the file and, where there is one,
the line: a file that cannot be opened (missing, a folder, no permission), gzip data that is
truncated or corrupt, bytes that are not UTF-8, JSON syntax, nesting too deep for the parser,
integers too long for Python to convert, and the non-standard NaN/Infinity literals. Whether a
file is gzip is read from its first bytes, not its name, so a misnamed file reads as what it is.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rbridge_tasks.core.errors import RBridgeError, located

GZIP_MAGIC = b"\x1f\x8b"
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def iter_jsonl(
    path: str | Path, *, allow_nan: bool = False, torn_tail_ok: bool = False
) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line.

    `torn_tail_ok`: a last line without a newline that does not decode is left out instead of
    failing; it is the record a job was writing when it died (`trace_io.TraceAppender`).
    """
    path = Path(path)
    n = 0
    with _open_bytes(path) as fh:
        try:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                if n == 1:
                    raw = raw.removeprefix(codecs.BOM_UTF8)
                try:
                    value = decode_json(raw, str(path), line=n, allow_nan=allow_nan)
                except RBridgeError:
                    if torn_tail_ok and not raw.endswith(b"\n"):
                        return
                    raise
                yield n, value
        except _DECOMPRESSION_ERRORS as exc:
            raise _decompression_error(path, exc, line=n + 1) from None
        except OSError as exc:
            raise read_error(path, exc) from None


def read_json(path: str | Path, *, allow_nan: bool = False) -> Any:
    """The one JSON value of a whole file (a BOM is allowed, gzip is recognised)."""
    path = Path(path)
    with _open_bytes(path) as fh:
        try:
            raw = fh.read()
        except _DECOMPRESSION_ERRORS as exc:
            raise _decompression_error(path, exc) from None
        except OSError as exc:
            raise read_error(path, exc) from None
    return decode_json(raw.removeprefix(codecs.BOM_UTF8), str(path), allow_nan=allow_nan)


def decode_json(
    raw: bytes, source: str, *, line: int | None = None, allow_nan: bool = False
) -> Any:
    """One JSON text; `line` is the line of a JSON Lines file (None: `raw` is a whole file)."""

    def fail(message: str, offset: int | None = None) -> RBridgeError:
        at = line
        if at is None and offset is not None:
            at = raw.count(b"\n", 0, offset) + 1
        return located(source, message, line=at)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 4]
        raise fail(
            f"not valid UTF-8 (bytes {bad!r} at byte {column} of the line); save the file as UTF-8",
            exc.start,
        ) from None
    try:
        return json.loads(text, parse_constant=None if allow_nan else _reject_constant)
    except json.JSONDecodeError as exc:
        if line is None:
            message = f"not valid JSON ({exc.msg}, column {exc.colno})"
            raise located(source, message, line=exc.lineno) from None
        raise located(
            source, f"invalid JSON ({exc.msg} at column {exc.colno})", line=line
        ) from None
    except _NonStandardConstant as exc:
        raise fail(
            f"invalid JSON: {exc.args[0]} is not a JSON number (write a number or null)"
        ) from None
    except RecursionError:
        raise fail("invalid JSON: values nested too deeply to read") from None
    except ValueError as exc:  # int(): "Exceeds the limit (4300 digits) for integer string ..."
        raise fail(
            f"invalid JSON: an integer too long to read ({str(exc).split(';')[0]})"
        ) from None


def read_text(path: str | Path) -> str:
    """A whole text file (gzip read from its first bytes), decoded as UTF-8 (a byte-order mark
    dropped); damage or other encodings are one located error."""
    path = Path(path)
    with _open_bytes(path) as fh:
        try:
            data = fh.read()
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
                raise read_error(path, exc) from None
            raise _decompression_error(path, exc) from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise located(
            str(path), f"not UTF-8 text (byte {data[exc.start]:#04x}); save it as UTF-8", line=line
        ) from None


def read_error(path: Path, exc: OSError) -> RBridgeError:
    """An OSError met while reading `path`, as one line that says what to fix."""
    if isinstance(exc, IsADirectoryError):
        return located(str(path), "is a folder; expected a file")
    if isinstance(exc, FileNotFoundError):
        return located(str(path), "no such file")
    if isinstance(exc, PermissionError):
        return located(str(path), "cannot read the file: permission denied")
    return located(str(path), f"cannot read the file ({exc.strerror or exc})")


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


@contextmanager
def _open_bytes(path: Path) -> Iterator[IO[bytes]]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below, possibly through GzipFile)
        magic = fh.read(2)
        fh.seek(0)
    except OSError as exc:
        raise read_error(path, exc) from None
    try:
        if magic == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=fh, mode="rb") as unzipped:
                yield unzipped
        else:
            yield fh
    finally:
        fh.close()


def _decompression_error(path: Path, exc: BaseException, line: int | None = None) -> RBridgeError:
    reason = (
        "the gzip data is truncated (the file was cut short)"
        if isinstance(exc, EOFError)
        else f"the gzip data is corrupt ({exc})"
    )
    return located(str(path), f"cannot decompress: {reason}", line=line)


MISSING: Any = object()  # what `field_at` returns where a record has no such field


def field_at(obj: Any, name: str) -> Any:
    """The value at key `name`, else at a dotted path into nested objects (a number indexes a
    list: `choices.0.text`); `MISSING` where there is none. Every field-name option means this:
    the released-trace mapping, `import --format jsonl`, question files."""
    if isinstance(obj, Mapping) and name in obj:
        return obj[name]
    value = obj
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value
