"""One exception type for every bad input, so callers (and the CLI) can show one clear line."""

from __future__ import annotations


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
