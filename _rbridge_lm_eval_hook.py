"""Run at interpreter start by `rbridge-lm-eval-hook.pth`: one small import, nothing else.

Under plain `lm_eval --include_path "$(rbridge tasks-path)"`, lm-eval imports the rbridge
package only when it builds one of our tasks, so a misspelt rBridge task name fails before any
of our code runs, with lm-eval's 15-line traceback ending in `ValueError: Tasks not found`. This
wraps `sys.excepthook` so that exactly that case (under lm-eval's console script, a name starting
with `rbridge`) ends in one line naming the closest task, with exit status 2, like `rbridge eval`.
Everything else goes to the previous hook unchanged.
"""

import sys


def _hook(kind, exc, tb, previous=sys.excepthook):
    program = (sys.argv or [""])[0].replace("\\", "/")
    lm_eval = program.rsplit("/", 1)[-1] in ("lm_eval", "lm-eval") or program.endswith(
        "lm_eval/__main__.py"
    )
    text = str(exc)
    if lm_eval and isinstance(exc, ValueError) and text.startswith("Tasks not found:"):
        try:
            from rbridge_tasks.harness.runner import misspelt_task

            names = [t.strip() for t in text.removeprefix("Tasks not found:").split(",")]
            messages = [m for m in map(misspelt_task, names) if m is not None]
        except Exception:  # a broken install: lm-eval's own report is the better one
            messages = []
        if messages:
            print(f"lm_eval: error: {messages[0]}", file=sys.stderr)
            sys.stderr.flush()
            import os

            os._exit(2)  # the exit status an excepthook cannot otherwise set
    previous(kind, exc, tb)


sys.excepthook = _hook
