"""The wheel ships the quick start's data and declares its license as an SPDX expression, built
without setuptools' license-table deprecation warning."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

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
