"""`rbridge eval`: lm-eval's own `run` command with the rBridge task directory already included.

lm-eval 0.4.13 discovers neither tasks nor models from installed packages, and its
`--include_path` takes one directory; this wrapper registers `hf-rbridge`/`vllm-rbridge` and
prepends our task directory to whatever the user passes, so every other lm-eval flag works
unchanged.
"""

from __future__ import annotations

import sys

from rbridge_tasks import tasks_path


def run_eval(argv: list[str]) -> int:
    from lm_eval._cli.harness import HarnessCLI
    from lm_eval.utils import setup_logging

    import rbridge_tasks.models  # noqa: F401  (makes --model hf-rbridge / vllm-rbridge known)

    setup_logging()
    cli = HarnessCLI()
    saved_argv = sys.argv
    sys.argv = ["rbridge eval", "run", *argv]
    try:
        args = cli.parse_args()
    finally:
        sys.argv = saved_argv
    args.include_path = [str(tasks_path()), *([args.include_path] if args.include_path else [])]
    cli.execute(args)
    return 0
