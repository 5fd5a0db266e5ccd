"""`rbridge quickstart DIR`: the whole rBridge loop offline, on CPU (11 min on 2 shared cores).

It is the ladder study (`rbridge study`, `study/ladder.py`) at its small size: five data
recipes, a tiny proxy and a larger target per recipe and a frontier model, all trained here;
the frontier writes the traces (`rbridge traces generate`), lm-eval measures every target's
accuracy, `rbridge eval` scores every proxy, and `rbridge predict compare` / `rank` fit and rank
the proxies' scores against the targets' measured accuracies. Each command is printed as it runs,
so the run is also a transcript of the workflow. The models are tiny, so the fit is a small
measurement, not the paper's claim (README, "Ladder study").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.study.ladder import run_study


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rbridge quickstart",
        description="Run the whole loop offline on tiny CPU models: the ladder study at its "
        "small size (`rbridge study DIR --size small`).",
    )
    parser.add_argument("dir", help="new or empty folder for everything the loop writes")
    parser.add_argument("--tiny", action="store_true", help="a few training steps only (CI)")
    args = parser.parse_args(argv)
    run_quickstart(Path(args.dir), tiny=args.tiny)
    return 0


def run_quickstart(root: Path, *, tiny: bool = False) -> Path:
    if root.exists() and any(root.iterdir()):
        raise RBridgeError(
            f"{root}: the quick start needs a new or empty folder "
            f"(`rbridge study {root} --size small` resumes one)"
        )
    started = time.monotonic()
    compare = run_study(root, size="tiny" if tiny else "small")
    print(
        f"[quickstart] done in {time.monotonic() - started:.0f} s: {compare / 'compare.md'} "
        "(every proxy metric against the targets' measured accuracy), "
        f"{root / 'rank' / 'rank.md'} (the recipes ranked by rbridge_nll)",
        file=sys.stderr,
        flush=True,
    )
    return compare
