"""Stock `hf` vs `hf-rbridge` vs the one-pass limit on rBridge GSM8K scoring.

One run measures, on the same documents and model, the seconds lm-eval's backends spend answering
the `rbridge_gsm8k` requests:

- `stock`: lm-eval's `hf` backend, one forward pass per request (per proxy token);
- `fast`: `hf-rbridge`, one forward pass per document;
- `limit`: `hf` answering one plain `loglikelihood(question, trace)` per document, the physical
  limit (one forward pass over question + trace, nothing else).

Each mode runs in its own process, so its peak memory (max RSS on CPU, peak allocated on CUDA) is
its own. `limit` and `fast` take seconds, so they report the best of `--repeats` runs; `stock`
takes minutes and runs once.

The model is a ~20M-parameter GPT-2 (random weights: the cost does not depend on them) with a 16k
BPE vocabulary trained on GSM8K; documents are real GSM8K questions with GPT-4o-mini traces of
130-300 proxy tokens.

    python benchmarks/scoring.py --docs 8 [--device cuda] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tiny-model builders shared with the tests

from tiny_models import DATA_DIR, corpus_texts, gpt2_style_tokenizer  # noqa: E402

CACHE = REPO / ".bench"


def build_model(directory: Path) -> Path:
    """~20M parameters: 16k vocab x 320 wide x 12 layers (tied embeddings)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if (directory / "config.json").exists():
        return directory
    tokenizer = gpt2_style_tokenizer(corpus_texts(7473), vocab_size=16000)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=1024,
            n_embd=320,
            n_layer=12,
            n_head=8,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_traces(model_dir: Path, n_docs: int, path: Path) -> Path:
    """GSM8K documents whose GPT-4o-mini trace is 130-300 proxy tokens long."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    source = next((DATA_DIR / "traces_gpt4o_mini_rereading").glob("gsm_gpt-4o-mini*.jsonl"))
    rows = sorted(
        (json.loads(line) for line in source.open(encoding="utf-8")), key=lambda r: r["id"]
    )
    rng = random.Random(0)
    records = []
    for row in rows:
        trace = row["vanilla"]["generation"][0]
        if not 130 <= len(tokenizer(trace).input_ids) <= 300:
            continue
        pieces = re.findall(r"\s*\S+|\s+", trace)  # stand-in frontier tokens; cost ignores them
        records.append(
            {
                "id": str(row["id"]),
                "benchmark": "gsm8k",
                "question": row["input"],
                "trace": trace,
                "frontier_model": "benchmark",
                "frontier_tokens": [{"text": p, "logprob": -3 * rng.random()} for p in pieces],
            }
        )
        if len(records) == n_docs:
            break
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run_mode(
    mode: str, model_dir: Path, traces: Path, device: str, batch_size: int, repeats: int
) -> dict:
    """Time one backend on the task's requests (executed in a fresh process)."""
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from rbridge_tasks import tasks_path
    from rbridge_tasks.hf_rbridge import HFRBridgeLM

    manager = TaskManager(
        include_path=str(tasks_path()),
        include_defaults=False,
        metadata={"traces": str(traces), "data_dir": str(DATA_DIR), "pretrained": str(model_dir)},
    )
    task = manager.load(["rbridge_gsm8k"])["tasks"]["rbridge_gsm8k"]
    task.build_all_requests()
    if mode == "limit":
        requests = [
            Instance("loglikelihood", doc=d, arguments=(d["prompt"], " " + d["trace"]), idx=0)
            for d in task.eval_docs
        ]
    else:
        requests = task.instances
    cls = HFRBridgeLM if mode == "fast" else HFLM
    lm = cls(pretrained=str(model_dir), device=device, batch_size=batch_size)
    lm.loglikelihood(requests[:batch_size], disable_tqdm=True)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timings = []
    for _ in range(1 if mode == "stock" else repeats):
        start = time.perf_counter()
        lm.loglikelihood(requests, disable_tqdm=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    seconds = min(timings)
    peak = (
        torch.cuda.max_memory_allocated()
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "mode": mode,
        "seconds": seconds,
        "requests": len(requests),
        "documents": len(task.eval_docs),
        "peak_memory_mib": peak / 2**20,
        "parameters_m": sum(p.numel() for p in lm.model.parameters()) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--mode", choices=["stock", "fast", "limit"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    model_dir = build_model(CACHE / "gpt2-20m")
    traces = CACHE / f"gsm8k_{args.docs}.jsonl"
    if args.mode:  # child process
        result = run_mode(args.mode, model_dir, traces, args.device, args.batch_size, args.repeats)
        print(json.dumps(result))
        return
    build_traces(model_dir, args.docs, traces)
    results = {}
    for mode in ("limit", "fast", "stock"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--docs",
                str(args.docs),
                "--device",
                args.device,
                "--batch-size",
                str(args.batch_size),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[mode]
        print(
            f"{mode:>5}: {r['seconds']:9.2f} s  {r['requests']:6d} requests  "
            f"peak {r['peak_memory_mib']:8.1f} MiB",
            flush=True,
        )
    ratios = {
        "stock_over_fast": results["stock"]["seconds"] / results["fast"]["seconds"],
        "fast_over_limit": results["fast"]["seconds"] / results["limit"]["seconds"],
    }
    print(
        f"model {results['fast']['parameters_m']:.1f}M parameters, "
        f"{results['fast']['documents']} documents, device {args.device}"
    )
    print(
        f"hf-rbridge is {ratios['stock_over_fast']:.1f}x faster than stock hf and "
        f"{ratios['fast_over_limit']:.2f}x the one-pass limit"
    )
    if args.out:
        args.out.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
