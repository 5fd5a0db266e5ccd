"""`rbridge predict --help` imports none of the heavy libraries (timed in benchmarks/cli_startup.py,
not here), and the parser's choices are the implementing modules' own names."""

from __future__ import annotations

import subprocess
import sys

from predictors.choices import DEFAULT_FORMS, FORM_NAMES, SELECT_NAMES
from predictors.fitting.estimators import FORMS
from predictors.fitting.selection import SELECT

HEAVY = ("sklearn", "pandas", "scipy", "matplotlib", "numpy", "torch", "lm_eval")

PROBE = f"""
import contextlib, io, sys
from rbridge_tasks.cli import main
for argv in (["predict", "--help"], ["predict", "gate", "--help"], ["--version"]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_help_and_version_import_no_heavy_library():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_parser_choices_are_the_implemented_ones():
    assert tuple(FORMS) == FORM_NAMES and set(DEFAULT_FORMS) <= set(FORMS)
    assert sorted(SELECT_NAMES) == sorted(SELECT)
