"""The wheel ships the task YAMLs and the entry points, and declares its
license as an SPDX expression (built without setuptools' license-table deprecation warning);
the `rbridge` CLI finds the YAMLs; what the README's commands write in the checkout is ignored
by git."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lm_eval.tasks import TaskManager

from rbridge_tasks import tasks_path
from rbridge_tasks.backends.models import MODELS

REPO = Path(__file__).resolve().parents[1]
TASKS = {
    f"rbridge_{b}" for b in ("gsm8k", "math500", "arc_challenge", "mmlu_pro", "csqa", "humaneval")
}


def test_wheel_ships_the_yamls_and_declares_entry_points(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("rbridge-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for yaml in ["rbridge.yaml", "_default_template_yaml", *(f"{t}.yaml" for t in TASKS)]:
        assert f"rbridge_tasks/task_configs/{yaml}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "rbridge = rbridge_tasks.cli:main" in text
    assert "[lm_eval.tasks]" in text
    # the plugin entry points name the classes of the one model table
    for name, target in MODELS.items():
        assert f"{name} = {target}" in text
    # the start-up hook of `_rbridge_lm_eval_hook.py`, at the top of site-packages
    assert {"rbridge-lm-eval-hook.pth", "_rbridge_lm_eval_hook.py"} <= names
    pth = zipfile.ZipFile(wheel).read("rbridge-lm-eval-hook.pth").decode()
    assert pth == "import _rbridge_lm_eval_hook\n"

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    printed = subprocess.run(
        [sys.executable, "-c", "import rbridge_tasks; print(rbridge_tasks.tasks_path())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert Path(printed).is_relative_to(target)
    assert (Path(printed) / "rbridge_gsm8k.yaml").is_file()


def test_lm_eval_indexes_the_tasks_and_the_group():
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False)
    assert set(manager.all_tasks) >= TASKS
    assert "rbridge" in manager.all_groups


def test_cli_prints_the_tasks_path_and_rejects_unknown_commands():
    run = [sys.executable, "-m", "rbridge_tasks.cli"]
    done = subprocess.run([*run, "tasks-path"], capture_output=True, text=True, check=True)
    assert Path(done.stdout.strip()) == tasks_path()
    done = subprocess.run([*run, "frobnicate"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown command 'frobnicate'" in done.stderr


def test_wheel_has_an_spdx_license(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
         "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    log = (build.stdout + build.stderr).lower()
    assert not [line for line in log.splitlines() if "license" in line and "deprecat" in line]
    wheel = zipfile.ZipFile(next(tmp_path.glob("rbridge-*.whl")))
    names = set(wheel.namelist())
    metadata = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()


def readme_outputs() -> set[str]:
    """The paths the README's commands write (files; folders end in "/"), placeholders left out."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = " ".join(re.findall(r"```bash\n(.*?)```", text, re.S)).replace("\\\n", " ")
    folders = re.findall(
        r"(?:--out-dir|--output_path|rbridge quickstart|rbridge study) (\S+)", commands
    )
    files = re.findall(r"(?:--out|rbridge traces confidences \S+) (\S+)", commands)
    files += [f + ".skipped.jsonl" for f in files]  # generate's and confidences' skip lists
    outputs = {f.rstrip("/") + "/" for f in folders} | set(files)
    return {p for p in outputs if not p.rstrip("/").isupper()}  # DIR, FILE: the user's own


def test_what_the_readme_commands_write_is_ignored_by_git():
    outputs = readme_outputs()
    assert {"results/", "qs/", "gsm8k-text.jsonl", "gsm8k.jsonl.skipped.jsonl", "fit/"} <= outputs
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    probes = [p + "probe" if p.endswith("/") else p for p in sorted(outputs)]
    check = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "--verbose", "--non-matching",
         *probes],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode in (0, 1), check.stderr
    tracked = [line.split("\t")[1] for line in check.stdout.splitlines() if line.startswith("::")]
    assert tracked == [], f"not in .gitignore: {tracked}"
