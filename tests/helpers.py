"""Helpers shared by the test modules: rBridge tasks run in-process through real lm-eval (faster
than a subprocess per test), the `rbridge` command line run in-process or (`rbridge_eval`) as a
subprocess, and real file-system
faults (a small tmpfs, full or read-only, mounted and removed by the test; where mounting is not
allowed the test is skipped, saying so)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from rbridge_tasks import tasks_path
from rbridge_tasks.cli import main as rbridge_main


def task_manager(**metadata) -> TaskManager:
    return TaskManager(
        include_path=str(tasks_path()),
        include_defaults=False,
        metadata={k: str(v) for k, v in metadata.items()},
    )


def evaluate(model_dir: Path, tasks: list[str], *, lm: HFLM | None = None, **metadata) -> dict:
    """lm-eval results (with samples) for `tasks`, the tokenizer named as lm-eval's CLI would."""
    lm = lm or HFLM(pretrained=str(model_dir), device="cpu", batch_size=32)
    return simple_evaluate(
        model=lm,
        tasks=tasks,
        bootstrap_iters=0,
        log_samples=True,
        task_manager=task_manager(pretrained=model_dir, **metadata),
    )


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    """`rbridge ARGV` in-process: exit code, stdout and stderr, never a traceback."""
    code = rbridge_main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


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


def rbridge_eval(out_dir: Path, *args: str) -> tuple[dict, dict[str, list[dict]]]:
    """`rbridge eval` as a user runs it, in its own process: the results file and each task's
    samples, by task name."""
    command = [sys.executable, "-m", "rbridge_tasks.cli", "eval", "--device", "cpu",
               "--batch_size", "4", "--output_path", str(out_dir), "--log_samples",
               *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next(out_dir.rglob("results_*.json")).read_text())
    samples = {}
    for path in out_dir.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return results, samples
