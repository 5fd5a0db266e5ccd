"""`rbridge`: one console script for scoring (`eval`), traces and prediction (`predict`)."""

from __future__ import annotations

import sys

from rbridge_tasks import __version__, tasks_path
from rbridge_tasks.commands import SUBCOMMANDS, guarded

USAGE = """usage: rbridge [--version] <command> [args]

commands:
  tasks-path   print the task directory, for `lm_eval --include_path "$(rbridge tasks-path)"`
  eval         lm-eval's `run` with the rBridge tasks and models included (same flags)
  traces       generate, import, re-weight, validate and summarise frontier trace packs
  predict      fit proxy scores to large-model accuracies; rank, leaderboards, CI gate
  quickstart   the whole loop offline on tiny CPU models, in a new folder (a demo)
  study        a ladder study in miniature on CPU: recipes, proxies, targets, frontier
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"rbridge {__version__} (lm-eval {version('lm_eval')})")
        return 0
    command, rest = args[0], args[1:]
    if command == "tasks-path":
        print(tasks_path())
        return 0
    if command == "quickstart":
        from rbridge_tasks.quickstart import main as quickstart

        return guarded(command, quickstart, rest)
    if command == "study":
        from rbridge_tasks.study.ladder import main as study

        return guarded(command, study, rest)
    if command in SUBCOMMANDS:
        return guarded(command, SUBCOMMANDS[command], rest)
    print(f"rbridge: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
