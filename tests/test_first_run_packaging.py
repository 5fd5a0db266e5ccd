"""The wheel ships the quick start's data and declares its license as an SPDX expression, built
without setuptools' license-table deprecation warning; what the README's commands write in the
checkout is ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_DATA = (
    "PROVENANCE.md",
    "gsm8k_test_0-23.jsonl",
    "gsm8k_train_0-199.jsonl",
    "gpt4o_mini_gsm8k_test_0-23.jsonl",
)


def test_wheel_has_quickstart_data_and_an_spdx_license(tmp_path):
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
    for name in QUICKSTART_DATA:
        source = REPO / "rbridge_tasks" / "quickstart_data" / name
        assert wheel.read(f"rbridge_tasks/quickstart_data/{name}") == source.read_bytes()
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
