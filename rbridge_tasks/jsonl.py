"""Reading JSON Lines files (`.jsonl`, or gzip-compressed `.jsonl.gz`)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rbridge_tasks.errors import located


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for each non-blank line; bad JSON names the file and line."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise located(
                    str(path), f"invalid JSON ({exc.msg} at column {exc.colno})", line=n
                ) from exc
