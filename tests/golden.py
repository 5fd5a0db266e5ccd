"""Per-document numbers recorded before a refactor, and the run that reproduces them.

`tests/data/golden/` holds three tiny proxies (GPT-2 byte BPE, SentencePiece with BOS, Llama-3
regex; random weights, stored so that library upgrades cannot change them), a trace pack of two
real-text documents per benchmark, and `numbers.json`: every per-document metric of the six
rBridge tasks (`hf-rbridge`, and stock `hf`) and the six baseline tasks (`hf-rbridge`), computed
in float64 so that they reproduce to 1e-9 on any CPU. `python tests/golden.py --record` rewrites
the numbers; do that only for an intended change of a definition, and say so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
FAMILIES = ("gpt2", "llama", "llama3")
RUNS = {  # name: (model, tasks)
    "document": ("hf-rbridge", "rbridge"),
    "pieces": ("hf", "rbridge"),
    "baselines": ("hf-rbridge", "rbridge_baselines"),
}
BOOKKEEPING = ("doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter",
               "metrics", "doc_hash", "prompt_hash", "target_hash")  # fmt: skip


def build(folder: Path = GOLDEN) -> None:
    """Write the models and the pack (once; they are committed)."""
    sys.path.insert(0, str(HERE))
    from tiny_models import build_tiny_lm
    from trace_fixtures import write_benchmark_traces

    for seed, family in enumerate(FAMILIES):
        build_tiny_lm(folder / "models" / family, family=family, seed=seed)
    frontier = build_tiny_lm(folder / "frontier-tmp", family="gpt2", seed=7, n_layer=1)
    (folder / "pack").mkdir(exist_ok=True)
    write_benchmark_traces(folder / "pack", frontier, 2)
    shutil.rmtree(folder / "frontier-tmp")


def run(family: str, name: str, data_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{task: {document id: {metric: value}}} of one run, in float64."""
    from rbridge_tasks import evaluate

    model, tasks = RUNS[name]
    out = evaluate(
        model,
        [tasks],
        model_args={"pretrained": str(GOLDEN / "models" / family), "dtype": "float64",
                    "softmax_dtype": "float64"},
        metadata={"traces": str(GOLDEN / "pack"), "data_dir": str(data_dir)},
        batch_size=4,
        bootstrap_iters=0,
        device="cpu",
    )  # fmt: skip
    return {
        task: {
            s["doc"]["id"]: {k: v for k, v in s.items() if k not in BOOKKEEPING} for s in samples
        }
        for task, samples in out["samples"].items()
    }


def record(data_dir: Path) -> None:
    numbers = {f"{f}/{n}": run(f, n, data_dir) for f in FAMILIES for n in RUNS}
    (GOLDEN / "numbers.json").write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="write the models and the pack")
    parser.add_argument("--record", action="store_true", help="rewrite numbers.json")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from tiny_models import DATA_DIR

    if args.build:
        build()
    if args.record:
        record(DATA_DIR)
