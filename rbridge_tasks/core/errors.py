"""One exception type for every bad input, so callers (and the CLI) can show one clear line."""

from __future__ import annotations

import errno
import logging


class RBridgeError(ValueError):
    """Bad input or configuration that the user must fix; the message says where and how."""


def located(
    source: str,
    message: str,
    *,
    line: int | None = None,
    record_id: str | None = None,
    field: str | None = None,
) -> RBridgeError:
    """Build an error that names the file, record and field, the three things a user needs."""
    where = [source]
    if line is not None:
        where.append(f"line {line}")
    if record_id is not None:
        where.append(f"id {record_id!r}")
    if field is not None:
        where.append(f"field {field!r}")
    return RBridgeError(f"{', '.join(where)}: {message}")


def first_line(exc: BaseException) -> str:
    """A library exception's first line: hub and transformers errors run over several lines."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free space and run again (finished work is kept)",
    errno.EDQUOT: "the disk quota is used up; free space and run again (finished work is kept)",
    errno.EACCES: "no permission; choose another path or change its permissions",
    errno.EPERM: "no permission; choose another path or change its permissions",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOTDIR: "a folder on this path is a file",
    errno.EISDIR: "this is a folder; give a file path",
    errno.EEXIST: "this exists and is not a folder",
}


def os_error_message(exc: OSError) -> str:
    """One line for a file-system error: the path, what went wrong and what to do."""
    reason = exc.strerror or first_line(exc)
    hint = _OS_HINTS.get(exc.errno)
    text = f"{reason} ({hint})" if hint else reason
    return text if exc.filename is None else f"{exc.filename}: {text}"


def follow_lm_eval_logging() -> None:
    """Send this package's log lines where lm-eval sends its own, at its level and in its format.

    lm-eval configures only its own logger, so without this our info lines (e.g. what
    `--use_cache` answered) would be dropped and our warnings printed without a timestamp.
    """
    ours, theirs = logging.getLogger("rbridge_tasks"), logging.getLogger("lm_eval")
    if theirs.handlers and not ours.handlers:
        ours.setLevel(theirs.level)
        for handler in theirs.handlers:
            ours.addHandler(handler)
