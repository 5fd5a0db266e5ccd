"""Start-up cost of `rbridge` commands, end to end, as a ratio to a bare `python -c pass`.

Each command is a whole new process, measured from outside with `os.wait4`: wall clock, CPU time
(user + system) and peak RSS. Runs alternate between the command and the baseline so that a
machine busy with other work slows both alike; medians over `--repeat` runs are reported. The
target of issue 12: `rbridge predict --help` under 2 s (it used to import scikit-learn, pandas,
scipy and matplotlib before parsing its arguments: 7-11 s).

    python benchmarks/cli_startup.py [--repeat 7] [--out startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "rbridge predict --help": ["-m", "rbridge_tasks.cli", "predict", "--help"],
    "rbridge predict fit --help": ["-m", "rbridge_tasks.cli", "predict", "fit", "--help"],
    "rbridge --version": ["-m", "rbridge_tasks.cli", "--version"],
    "rbridge eval --help": ["-m", "rbridge_tasks.cli", "eval", "--help"],
}
BASELINE = ["-c", "pass"]


def measure(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{args} exited with {process.returncode}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
    }


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", help="write the numbers as JSON")
    args = parser.parse_args()
    measure(BASELINE)  # warm the file cache once for both sides
    report = {}
    for name, command in COMMANDS.items():
        measure(command)
        runs, baseline = [], []
        for _ in range(args.repeat):
            runs.append(measure(command))
            baseline.append(measure(BASELINE))
        ours, base = median(runs), median(baseline)
        report[name] = {
            **ours,
            "baseline": base,
            "wall_ratio": ours["wall_s"] / base["wall_s"],
            "cpu_ratio": ours["cpu_s"] / base["cpu_s"],
            "rss_ratio": ours["peak_rss_mib"] / base["peak_rss_mib"],
        }
        print(
            f"{name:<28} wall {ours['wall_s']:.3f} s ({report[name]['wall_ratio']:.1f}x), "
            f"cpu {ours['cpu_s']:.3f} s ({report[name]['cpu_ratio']:.1f}x), "
            f"peak RSS {ours['peak_rss_mib']:.0f} MiB ({report[name]['rss_ratio']:.1f}x); "
            f"python -c pass: wall {base['wall_s']:.3f} s, cpu {base['cpu_s']:.3f} s, "
            f"{base['peak_rss_mib']:.0f} MiB"
        )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
