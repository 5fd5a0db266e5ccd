"""End to end: `rbridge eval` in document mode against pieces mode and the one-pass limit.

Every mode is one whole `rbridge eval` process (task building, request construction, the model,
result processing, writing results and samples with `--log_samples`), measured from outside:
wall clock, CPU time (user + system), peak RSS of the process, and bytes written.

- `document`: `--model hf-rbridge` (one `rbridge_document` request per trace);
- `pieces`: `--model hf` (stock lm-eval, one `loglikelihood` request per proxy token), on a few
  documents and extrapolated per document;
- `limit`: the same lm-eval machinery answering one plain `loglikelihood(question, trace)` per
  document, from a plain YAML task over the very same texts (no traces, no weights).

`--mask` also times the span-mask task (`rbridge_mask_mmlu_pro`) over the same question/trace
pairs, each trace's sentences that hold a digit tagged `<span>...</span>` (a local copy of
rows, `--metadata mask_data`), against its own limit: `loglikelihood(question, reasoning)` with
no delimiter, the context the authors' scorer reads.

`limit` and `document` (and `mask` with its limit) run `--repeats` times, interleaved (limit,
document, limit, ...), and the ratios are of their medians, so a slow spell of the machine hits
both alike.

Two models: a ~20M-parameter GPT-2 (16k BPE vocabulary trained on GSM8K) and a near-free one
(1 layer, width 32, same vocabulary) that exposes every CPU overhead. Weights are random: cost
does not depend on them. Documents are real GSM8K questions with GPT-4o-mini traces; the frontier
tokens are stand-ins (whitespace pieces, random logprobs), which the cost ignores.

`--group` also runs the whole six-benchmark `rbridge` group at the released traces' counts
(10,162 documents) with stand-in traces of their typical lengths, near-free model, with
`--log_samples`: at a quarter of every task (`--limit 0.25`) and whole, and reports peak RSS of
both and its growth per document; and `rbridge_mmlu_pro` over the 5,791 MMLU-Pro STEM stand-ins at
`--limit 150` and `--limit 1500`. Memory that grows with the number of documents shows there.

    python benchmarks/scoring.py [--docs 200] [--pieces-docs 4] [--repeats 3] [--group]
                                 [--mask] [--skip-20m] [--group-only] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tiny-model builders shared with the tests

from tiny_models import DATA_DIR, corpus_texts, gpt2_style_tokenizer  # noqa: E402

CACHE = REPO / ".bench"
# The paper's trace counts (method.md) and typical lengths, in characters, of the stand-ins.
GROUP = {
    "gsm8k": 1319,
    "math500": 495,
    "arc_challenge": 1172,
    "mmlu_pro": 5791,
    "csqa": 1221,
    "humaneval": 164,
}


def build_model(directory: Path, n_layer: int, n_embd: int, n_head: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if (directory / "config.json").exists():
        return directory
    tokenizer = gpt2_style_tokenizer(corpus_texts(7473), vocab_size=16000)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=2048, n_embd=n_embd, n_layer=n_layer,
        n_head=n_head, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def stand_in_tokens(trace: str, rng: random.Random) -> list[dict]:
    pieces = re.findall(r"\s*\S+|\s+", trace)
    return [{"text": p, "logprob": -3 * rng.random()} for p in pieces]


def gsm8k_records(n_docs: int) -> list[dict]:
    """The first n GSM8K test questions (by id) with their GPT-4o-mini traces."""
    source = next((DATA_DIR / "traces_gpt4o_mini_rereading").glob("gsm_gpt-4o-mini*.jsonl"))
    rows = sorted(
        (json.loads(line) for line in source.open(encoding="utf-8")), key=lambda r: r["id"]
    )
    rng = random.Random(0)
    return [
        {
            "id": str(row["id"]),
            "benchmark": "gsm8k",
            "question": row["input"],
            "trace": row["vanilla"]["generation"][0],
            "frontier_model": "stand-in",
            "frontier_tokens": stand_in_tokens(row["vanilla"]["generation"][0], rng),
        }
        for row in rows[:n_docs]
    ]


def group_records() -> list[dict]:
    """Stand-in traces for the released counts: real reasoning text where the shared data has it
    (GPT-4o-mini GSM8K and CSQA, Gemini-1.5-Pro MMLU-Pro answers, MATH and HumanEval solutions),
    the question and options restated elsewhere."""
    from rbridge_tasks.questions.sources import load_questions

    rng = random.Random(1)
    texts: dict[str, list[str]] = {}
    for name, pattern in (("gsm8k", "gsm_"), ("csqa", "commonsenseqa_")):
        path = next((DATA_DIR / "traces_gpt4o_mini_rereading").glob(f"{pattern}gpt-4o-mini*.jsonl"))
        texts[name] = [json.loads(x)["vanilla"]["generation"][0] for x in path.open()]
    with zipfile.ZipFile(DATA_DIR / "mmlu_pro/model_outputs_gemini-1.5-pro-002_5shots.zip") as z:
        gemini = {
            str(r["question_id"]): r["model_outputs"] for r in json.loads(z.read(z.namelist()[0]))
        }
    records = []
    for benchmark, count in GROUP.items():
        questions = load_questions(benchmark, DATA_DIR)
        if benchmark == "mmlu_pro":  # the STEM categories, as in the paper
            stem = {"math", "physics", "chemistry", "engineering", "computer science", "biology"}
            questions = [q for q in questions if q.extra.get("category") in stem]
        for i, q in enumerate(questions[:count]):
            if benchmark in texts:
                trace = texts[benchmark][i % len(texts[benchmark])]
            elif benchmark == "mmlu_pro" and gemini.get(q.id, "").strip():
                trace = gemini[q.id][:3000]  # the longest would not fit a 2,048-token model
            elif benchmark in ("math500", "humaneval"):
                trace = q.gold if len(q.gold) > 40 else f"{q.question}\nSo the answer is {q.gold}."
            else:
                options = " ".join(f"Option {label} says {text}." for label, text in q.choices)
                trace = f"We compare the options. {options} Weighing them, {q.gold} fits best."
            trace = trace.strip() or "The answer follows."
            records.append(
                {"id": q.id, "benchmark": benchmark, "question": q.question, "trace": trace,
                 "frontier_model": "stand-in", "frontier_tokens": stand_in_tokens(trace, rng)}
            )  # fmt: skip
    return records


def mask_rows(records: list[dict]) -> list[dict]:
    """Span-mask rows over the same texts: each sentence (within a line) holding a digit is a
    tagged span, as the release tags its key steps."""
    key_step = re.compile(r"[^.\n]*\d[^.\n]*")
    return [
        {"question": r["question"],
         "reasoning": key_step.sub(lambda m: f"<span>{m.group()}</span>", r["trace"])}
        for r in records
    ]  # fmt: skip


def write_limit_task(folder: Path, docs: list[dict], delimiter: str = " ") -> Path:
    """A plain lm-eval task answering loglikelihood(prompt, delimiter + trace) over the same
    texts."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "limit.jsonl").write_text(
        "".join(json.dumps({"prompt": d["prompt"], "trace": d["trace"]}) + "\n" for d in docs)
    )
    (folder / "limit.yaml").write_text(
        "task: limit_gsm8k\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {folder / 'limit.jsonl'}\n"
        "test_split: test\noutput_type: loglikelihood\ndoc_to_text: '{{prompt}}'\n"
        f"doc_to_target: '{{{{trace}}}}'\ntarget_delimiter: {json.dumps(delimiter)}\n"
        "metric_list:\n  - metric: perplexity\n    aggregation: mean\n"
        "    higher_is_better: false\n  - metric: acc\n    aggregation: mean\n"
        "    higher_is_better: true\n"
    )
    return folder


def measure(command: list[str], out_dir: Path) -> dict:
    """Run one whole process; its own wall clock, CPU time, peak RSS and bytes written."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    log = out_dir.with_suffix(".log")  # a file, not a pipe: a full pipe would block the child
    start = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{tail}")
    samples = sum(p.stat().st_size for p in out_dir.rglob("samples_*.jsonl"))
    written = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "bytes_written": written,
        "samples_bytes": samples,
    }


def eval_command(model: str, model_dir: Path, tasks: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "rbridge_tasks.cli", "eval", "--model", model,
        "--model_args", f"pretrained={model_dir}", "--device", "cpu", "--batch_size", "16",
        "--tasks", tasks, "--output_path", str(out), "--log_samples", *extra,
    ]  # fmt: skip


def compare(
    name: str,
    model_dir: Path,
    traces: Path,
    docs: int,
    pieces_docs: int,
    repeats: int,
    work: Path,
    mask: Path | None = None,
):
    from lm_eval.tasks import TaskManager

    from rbridge_tasks import tasks_path

    manager = TaskManager(
        include_path=str(tasks_path()), include_defaults=False,
        metadata={"traces": str(traces), "data_dir": str(DATA_DIR), "pretrained": str(model_dir)},
    )  # fmt: skip
    task = manager.load(["rbridge_gsm8k"])["tasks"]["rbridge_gsm8k"]
    limit_dir = write_limit_task(work / f"limit-{name}", list(task.eval_docs))
    meta = ["--metadata", f"traces={traces}", f"data_dir={DATA_DIR}"]
    commands = {
        "limit": lambda out: eval_command("hf", model_dir, "limit_gsm8k", out,
                                          "--include_path", str(limit_dir)),
        "document": lambda out: eval_command("hf-rbridge", model_dir, "rbridge_gsm8k", out, *meta),
    }  # fmt: skip
    if mask is not None:
        from rbridge_tasks.records.span_tags import strict_spans

        rows = [json.loads(line) for line in mask.read_text().splitlines()]
        mask_limit = write_limit_task(
            work / f"limit-mask-{name}",
            [{"prompt": r["question"], "trace": strict_spans(r["reasoning"]).text} for r in rows],
            delimiter="",
        )
        commands["mask_limit"] = lambda out: eval_command(
            "hf", model_dir, "limit_gsm8k", out, "--include_path", str(mask_limit)
        )
        commands["mask"] = lambda out: eval_command(
            "hf-rbridge", model_dir, "rbridge_mask_mmlu_pro", out, "--metadata",
            f"mask_data={mask}",
        )  # fmt: skip
    runs: dict[str, list[dict]] = {mode: [] for mode in commands}
    for repeat in range(repeats):
        for mode, command in commands.items():
            out = work / f"{name}-{mode}-{repeat}"
            result = measure(command(out), out)
            runs[mode].append(result)
            report(f"{name} {mode} #{repeat + 1}", result, docs)
    row: dict = {mode: median_run(results) | {"runs": results} for mode, results in runs.items()}
    out = work / f"{name}-pieces"
    pieces = measure(
        eval_command("hf", model_dir, "rbridge_gsm8k", out, "--limit", str(pieces_docs), *meta),
        out,
    )  # fmt: skip
    report(f"{name} pieces", pieces, pieces_docs)
    row["pieces"] = pieces
    limit, document = row["limit"], row["document"]
    row["ratios"] = {
        "document_over_limit_wall": document["wall_s"] / limit["wall_s"],
        "document_over_limit_cpu": document["cpu_s"] / limit["cpu_s"],
        "document_over_limit_rss": document["peak_rss_mib"] / limit["peak_rss_mib"],
        # the fixed start-up cost (imports, model load) measured by the limit's own run is
        # left in; pieces is extrapolated per document from its few
        "pieces_over_document_wall_extrapolated": (pieces["wall_s"] / pieces_docs * docs)
        / document["wall_s"],
    }
    if mask is not None:
        for key, field in (("wall", "wall_s"), ("cpu", "cpu_s"), ("rss", "peak_rss_mib")):
            row["ratios"][f"mask_over_limit_{key}"] = row["mask"][field] / row["mask_limit"][field]
        print(f"  {name:>9} mask/limit (medians of {repeats}): wall "
              f"{row['ratios']['mask_over_limit_wall']:.3f}x, "
              f"CPU {row['ratios']['mask_over_limit_cpu']:.3f}x, "
              f"RSS {row['ratios']['mask_over_limit_rss']:.3f}x", flush=True)  # fmt: skip
    ratios = row["ratios"]
    print(f"  {name:>9} document/limit (medians of {repeats}): wall "
          f"{ratios['document_over_limit_wall']:.3f}x, "
          f"CPU {ratios['document_over_limit_cpu']:.3f}x, "
          f"RSS {ratios['document_over_limit_rss']:.3f}x; pieces (extrapolated) is "
          f"{ratios['pieces_over_document_wall_extrapolated']:.1f}x document",
          flush=True)  # fmt: skip
    return row


def median_run(results: list[dict]) -> dict:
    keys = ("wall_s", "cpu_s", "peak_rss_mib", "bytes_written", "samples_bytes")
    return {key: statistics.median(r[key] for r in results) for key in keys}


def report(label: str, result: dict, documents: int) -> None:
    print(f"  {label:>22}: {result['wall_s']:8.1f} s wall {result['cpu_s']:8.1f} s CPU  "
          f"peak RSS {result['peak_rss_mib']:7.0f} MiB  "
          f"{result['samples_bytes'] / documents / 1024:7.1f} KiB samples/doc",
          flush=True)  # fmt: skip


def memory_growth(model_dir: Path, work: Path) -> dict:
    """Peak RSS against the number of documents: the group at a quarter and whole, and the
    MMLU-Pro STEM task at 150 and 1,500 documents."""
    records = group_records()
    pack = work / "group.jsonl"
    pack.write_text("".join(json.dumps(r) + "\n" for r in records))
    meta = ["--metadata", f"traces={pack}", f"data_dir={DATA_DIR}"]
    out: dict = {}
    for label, task, limit, documents in (
        ("group_quarter", "rbridge", "0.25",
         sum(math.ceil(n * 0.25) for n in GROUP.values())),
        ("group", "rbridge", None, len(records)),
        ("mmlu_pro_150", "rbridge_mmlu_pro", "150", 150),
        ("mmlu_pro_1500", "rbridge_mmlu_pro", "1500", 1500),
    ):  # fmt: skip
        folder = work / label
        extra = [*meta, *(["--limit", limit] if limit else [])]
        result = measure(eval_command("hf-rbridge", model_dir, task, folder, *extra), folder)
        result["documents"] = documents
        out[label] = result
        report(f"{label} ({documents} docs)", result, documents)
        print(f"  {'':>22}  {result['bytes_written'] / 2**20:.1f} MiB written", flush=True)
    for small, large in (("group_quarter", "group"), ("mmlu_pro_150", "mmlu_pro_1500")):
        a, b = out[small], out[large]
        growth = (b["peak_rss_mib"] - a["peak_rss_mib"]) / (b["documents"] - a["documents"])
        ratio = b["peak_rss_mib"] / a["peak_rss_mib"]
        out[f"{large}_over_{small}"] = {"peak_rss_ratio": ratio, "mib_per_document": growth}
        print(f"  peak RSS {large} / {small}: {ratio:.3f}x, "
              f"{growth * 1024:+.1f} KiB per extra document", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--pieces-docs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per mode")
    parser.add_argument("--group", action="store_true", help="also the memory-growth runs")
    parser.add_argument("--mask", action="store_true", help="also the span-mask task")
    parser.add_argument("--skip-20m", action="store_true", help="only the near-free model")
    parser.add_argument("--group-only", action="store_true", help="only the memory-growth runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    models = {"near-free": build_model(CACHE / "gpt2-free", 1, 32, 2)}
    if not args.skip_20m:
        models = {"gpt2-20m": build_model(CACHE / "gpt2-20m", 12, 320, 8), **models}
    work = Path(tempfile.mkdtemp(prefix="rbridge-bench-"))
    traces = work / "gsm8k.jsonl"
    records = gsm8k_records(args.docs)
    traces.write_text("".join(json.dumps(r) + "\n" for r in records))
    mask = None
    if args.mask:
        mask = work / "mask.jsonl"
        mask.write_text("".join(json.dumps(r) + "\n" for r in mask_rows(records)))
    print(f"{args.docs} GSM8K documents (pieces: {args.pieces_docs}), batch 16, CPU, "
          f"{args.repeats} interleaved runs per mode, in {work}")  # fmt: skip
    summary: dict = {"documents": args.docs, "pieces_documents": args.pieces_docs,
                     "repeats": args.repeats, "models": {}}  # fmt: skip
    for name, model_dir in models.items() if not args.group_only else ():
        summary["models"][name] = compare(
            name, model_dir, traces, args.docs, args.pieces_docs, args.repeats, work, mask
        )
    if args.group or args.group_only:
        summary["memory"] = memory_growth(models["near-free"], work)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
