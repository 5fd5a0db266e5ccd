"""Under plain `lm_eval`, our bad-input errors end in one line and exit 2, as in `rbridge eval`.

lm-eval's CLI catches nothing, so an `RBridgeError` raised while it builds our task would print a
long traceback through lm-eval's internals with the useful line last. lm-eval imports our package
when it reads our YAMLs; only then, and only for its console script, this hook is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from rbridge_tasks.core.errors import RBridgeError


def under_lm_eval_cli() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return Path((sys.argv or [""])[0]).name in ("lm_eval", "lm-eval") or (
        spec is not None and spec.name == "lm_eval.__main__"
    )


def install() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, RBridgeError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            previous(kind, exc, tb)
            return
        print(f"lm_eval: error: {cause}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)  # the exit status an excepthook cannot otherwise set

    sys.excepthook = hook
