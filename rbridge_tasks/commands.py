"""The `rbridge` subcommands that do the work (`eval`, `traces`, `predict`), each ending a bad
input in one line on stderr with exit status 2; the console script (`cli`) and the quick start
(`quickstart`), which types them as a user would, both run them through here."""

from __future__ import annotations

import sys
from collections.abc import Callable

from rbridge_tasks.core.errors import RBridgeError, os_error_message


def _eval(argv: list[str]) -> int:
    from rbridge_tasks.harness.runner import run_eval

    return run_eval(argv)


def _traces(argv: list[str]) -> int:
    from rbridge_tasks.traces.cli import main

    return main(argv)


def _predict(argv: list[str]) -> int:
    from predictors.cli import main

    return main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "eval": _eval,
    "traces": _traces,
    "predict": _predict,
}


def guarded(command: str, run: Callable[[list[str]], int], argv: list[str]) -> int:
    """`run(argv)`, with our errors and file-system errors as one line and exit status 2."""
    try:
        return run(argv)
    except RBridgeError as exc:
        print(f"rbridge {command}: error: {exc}", file=sys.stderr)
    except OSError as exc:  # an output folder that is a file, a read-only or full disk, ...
        print(f"rbridge {command}: error: {os_error_message(exc)}", file=sys.stderr)
    return 2
