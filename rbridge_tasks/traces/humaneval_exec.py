"""Run a HumanEval completion against the benchmark's tests, in a separate, time-limited process.

Generated code is untrusted and may loop forever, so it never runs in this interpreter: each
check is a fresh `python -I` (isolated mode: no user site, no PYTHON* variables) in an empty
temporary directory, with a wall-clock limit that kills its whole process group and, on POSIX, an
address-space limit so a runaway allocation fails inside the child.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rbridge_tasks.questions.sources import Question

MEMORY_LIMIT_BYTES = 4 * 1024**3

# Sets the memory limit, then runs the program file as __main__.
_LAUNCHER = (
    "import resource, runpy, sys\n"
    "limit = int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)


@dataclass(frozen=True)
class ExecResult:
    """Whether the program passed, and a line saying why not (the last line of its stderr or
    the timeout), for the record's meta."""

    passed: bool
    detail: str


def humaneval_program(question: Question, code: str) -> str:
    """The program that passes iff `code` solves the task.

    `code` is either a whole function (it defines the entry point; the prompt's imports and
    helper functions come first) or, as in the original benchmark, the body that continues the
    prompt.
    """
    entry_point = question.extra["entry_point"]
    test = question.extra["test"]
    definition = re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", question.question, re.M)
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.M) and definition:
        program = question.question[: definition.start()] + code
    else:
        program = question.question + code
    return f"{program}\n\n{test}\n\ncheck({entry_point})\n"


def run_program(program: str, *, timeout: float) -> ExecResult:
    """Run `program`; it passes when it exits with status 0 within `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="rbridge-humaneval-") as workdir:
        path = Path(workdir) / "program.py"
        path.write_text(program, encoding="utf-8")
        if sys.platform.startswith("linux"):
            command = [sys.executable, "-I", "-c", _LAUNCHER, str(path), str(MEMORY_LIMIT_BYTES)]
        else:
            command = [sys.executable, "-I", str(path)]
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "")},
            start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return ExecResult(False, f"timed out after {timeout:g} s")
    if process.returncode == 0:
        return ExecResult(True, "passed")
    last_line = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return ExecResult(False, f"exit status {process.returncode}: {last_line[0][:200]}")


def check_humaneval(question: Question, code: str, *, timeout: float) -> ExecResult:
    """Judge a HumanEval answer by running the task's own tests on it, in a separate process
    limited in time and memory (a wrong answer may loop or allocate without end)."""
    return run_program(humaneval_program(question, code), timeout=timeout)
