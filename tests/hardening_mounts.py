"""Real file-system faults for the hardening tests: a small tmpfs (full disk) or a read-only one,
mounted and removed by the test; where mounting is not allowed the test is skipped, saying so."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs hands out space in pages


@contextlib.contextmanager
def tmpfs(mount_point: Path, *, size: str = "64k", read_only: bool = False) -> Iterator[Path]:
    mount_point.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path, *, leave_pages: int = 0) -> Path:
    """Fill the disk with one file, then give back `leave_pages` pages of it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                os.write(fd, b"\0" * PAGE)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave_pages * PAGE))
    finally:
        os.close(fd)
    return filler
