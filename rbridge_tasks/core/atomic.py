"""Atomic output files: write a temporary file beside the target, fsync it, rename it into place.

A reader (a CI job, a dashboard, a resumed run) sees the old file or the new one, never half of
one, and after a crash or a full disk the previous output is still there. The fsyncs (the file
before the rename, the folder after it) make that hold across a power cut too, not only a crash
of the process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and move the result into place; the temp file is removed on error.

    An OSError names `path` (not the temporary file), so a CLI can say which output failed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(handle)
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # about the output, whichever file the call named
            exc.filename, exc.filename2 = str(path), None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """`atomic_write` of a UTF-8 text (reports, JSON), whatever the locale's encoding."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _fsync(path: str | Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
