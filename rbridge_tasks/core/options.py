"""Reading option values the same way from every source: `--metadata key=value` strings,
JSON metadata and Python dicts (lm-eval hands all three to a task, and model args to the task
as metadata too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rbridge_tasks.core.errors import RBridgeError


def parse_flag(metadata: Mapping[str, Any], key: str, default: bool) -> bool:
    """A true/false option from JSON metadata, `key=value` strings or the Python API alike."""
    value = metadata.get(key, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise RBridgeError(f"--metadata {key}={value!r}: expected true or false")
    return lowered in ("true", "1", "yes")


def choice(metadata: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when the option is absent); a typo fails naming the choices."""
    value = str(metadata.get(key, choices[0])).strip()
    if value not in choices:
        raise RBridgeError(f"--metadata {key}={value!r}: expected one of {list(choices)}")
    return value


def positive_int(metadata: Mapping[str, Any], key: str) -> int | None:
    """A positive whole number, or None when absent or empty (`key=` on the command line).

    Raises
    ------
    RBridgeError
        Zero, a negative number, a bool or text that is not a whole number.
    """
    value = metadata.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise RBridgeError(f"--metadata {key}={value!r}: expected a positive whole number")
    return number


def optional_str(value: Any) -> str | None:
    """An empty string means "not given", as `key=` on the command line does."""
    return None if value is None or value == "" else str(value)
