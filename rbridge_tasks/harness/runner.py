"""`rbridge eval`: lm-eval's own `run` command with the rBridge task directory already included.

lm-eval 0.4.13 discovers neither tasks nor models from installed packages, and its
`--include_path` takes one directory; this wrapper registers `hf-rbridge`/`vllm-rbridge` and
prepends our task directory to whatever the user passes, so every other lm-eval flag works
unchanged. Before lm-eval loads anything it checks what would otherwise fail late, verbosely or
silently (a misspelt task or option, `--limit 0`, a task tokenizer that is not the model's, a
model path that is no model folder, vLLM missing, a pack without some of the tasks' benchmarks,
an output path that cannot be written, no hub for the traces, questions, span-mask rows or
model), so those end in one line; and a run whose results lm-eval could not save fails instead
of exiting 0.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import sys
import time
from argparse import Namespace
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rbridge_tasks.backends.models import MODELS
from rbridge_tasks.core.errors import RBridgeError, first_line
from rbridge_tasks.core.resources import tasks_path

# lm-eval's models whose `pretrained` is a transformers model folder or hub id, and ours
TRANSFORMERS_MODELS = ("hf", "hf-auto", "huggingface", "vllm", *MODELS)


def our_tasks(
    folders: Sequence[str | Path] = (), key: str = "benchmark"
) -> dict[str, tuple[str, ...]]:
    """Task and group names with their inputs: ours (the installed YAMLs) and those in `folders`
    (the user's `--include_path`, searched as lm-eval searches it), each with the `metadata`
    entry `key` of each task (`benchmark`, or an lm-eval `source_task`; `subset` for the
    span-mask tasks), none for a task without it."""
    import yaml

    class Loader(yaml.SafeLoader):  # lm-eval's `!function` tags do not matter here
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    paths = sorted(tasks_path().glob("*.yaml"))
    for folder in folders:
        paths += sorted(Path(folder).rglob("*.yaml")) if Path(folder).is_dir() else []
    configs = []
    for path in paths:
        try:
            config = yaml.load(path.read_text("utf-8"), Loader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # lm-eval reports a broken YAML of the user's itself
        if isinstance(config, dict):
            configs.append(config)
    tasks = {}
    for c in configs:
        if isinstance(c.get("task"), str):
            meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
            name = meta.get(key) or (meta.get("source_task") if key == "benchmark" else None)
            tasks[c["task"]] = (str(name),) if name else ()
    groups = {
        c["group"]: tuple(b for t in c["task"] for b in tasks.get(t, ()))
        for c in configs
        if isinstance(c.get("group"), str) and isinstance(c.get("task"), list)
    }
    return {**tasks, **groups}


def misspelt_task(task: str, known: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The one-line error for an rBridge task name that does not exist, else None (lm-eval's
    own task names and YAML paths are lm-eval's to check)."""
    known = our_tasks() if known is None else known
    if not task.startswith("rbridge") or task in known or task.endswith(".yaml"):
        return None
    close = difflib.get_close_matches(task, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else f"; ours are {', '.join(known)}"
    return f"--tasks {task}: no such task{hint}"


def run_eval(argv: list[str]) -> int:
    from lm_eval._cli.harness import HarnessCLI

    cli = HarnessCLI()
    cli._subparsers.choices["run"].epilog = _epilog()
    saved_argv = sys.argv
    sys.argv = ["rbridge eval", "run", *argv]
    try:
        args = cli.parse_args()
    finally:
        sys.argv = saved_argv
    args.include_path = [str(tasks_path()), *([args.include_path] if args.include_path else [])]
    preflight(args)

    from lm_eval.utils import setup_logging

    from rbridge_tasks.harness.registration import register_models

    register_models()
    setup_logging()
    started = time.time()
    try:
        cli.execute(args)
    except OSError as exc:  # transformers: a model folder or hub id it cannot load
        raise RBridgeError(f"could not load the model: {first_line(exc)}") from exc
    except ValueError as exc:
        if isinstance(exc, RBridgeError):
            raise
        if str(exc).startswith("Tasks not found:"):
            raise RBridgeError(_unknown_tasks(str(exc), args.include_path)) from exc
        if str(exc).startswith("Unrecognized"):  # transformers: a config it cannot read
            raise RBridgeError(f"could not load the model: {first_line(exc)}") from exc
        raise
    _check_results_saved(args.output_path, started)
    return 0


def preflight(args: Namespace) -> None:
    """Fail in one line, before lm-eval loads a model, on what would otherwise fail late."""
    if args.limit is not None and args.limit <= 0:
        raise RBridgeError(f"--limit {args.limit:g} scores nothing; pass a positive number")
    tasks = [t for name in args.tasks or () for t in str(name).split(",") if t]
    known = our_tasks(args.include_path[1:])
    for task in tasks:
        if (message := misspelt_task(task, known)) is not None:
            raise RBridgeError(message)
    model_args = args.model_args if isinstance(args.model_args, dict) else {}
    metadata = args.metadata if isinstance(args.metadata, dict) else {}
    from rbridge_tasks.core.hub import model_location
    from rbridge_tasks.harness.options import reject_misspelled_keys

    reject_misspelled_keys(metadata)
    _check_tokenizer(model_args, metadata)
    for key in ("traces", "data_dir", "mask_data"):  # before a model of GB loads for nothing
        if metadata.get(key) and not Path(str(metadata[key])).expanduser().exists():
            raise RBridgeError(f"--metadata {key}={metadata[key]}: no such file or folder")
    if args.model in ("vllm", "vllm-rbridge") and importlib.util.find_spec("vllm") is None:
        raise RBridgeError(
            f"--model {args.model} needs vLLM, which is not installed: pip install -e "
            '".[vllm]" (CUDA machines only; see the README\'s vLLM section), or use --model '
            "hf-rbridge"
        )
    pretrained = model_args.get("pretrained")
    location = None
    if args.model in TRANSFORMERS_MODELS and isinstance(pretrained, str):
        location = model_location(pretrained, f"--model_args pretrained={pretrained}")
    benchmarks = {t: known[t] for t in tasks if known.get(t)}
    if metadata.get("traces") and benchmarks:
        _check_pack(Path(str(metadata["traces"])).expanduser(), benchmarks, args.limit)
    if args.model == "hf-rbridge" and model_args.get("logits_budget_mb") is not None:
        from rbridge_tasks.backends.hf import positive_megabytes

        positive_megabytes(model_args["logits_budget_mb"], "logits_budget_mb")
    if args.output_path:
        _check_output_path(Path(str(args.output_path)).expanduser())
    from rbridge_tasks.core.hub import hub_unreachable

    offline = hub_unreachable()
    if not offline:
        return
    missing = _missing_inputs([b for t in tasks for b in known.get(t, ())], metadata)
    subsets = our_tasks(key="subset")
    missing += _missing_mask_rows([s for t in tasks for s in subsets.get(t, ())], metadata)
    pretrained = model_args.get("pretrained")
    if location == "unavailable":
        missing.append(f"--model_args pretrained=DIR ({pretrained!r}: not in the hub cache)")
    if missing:
        raise RBridgeError(
            f"the Hugging Face hub is unreachable ({offline}); pass {' and '.join(missing)}"
            " (see the README's Set up)"
        )


def _missing_inputs(benchmarks: list[str], metadata: dict[str, Any]) -> list[str]:
    """The hub-only inputs of our tasks that are neither given nor in the local cache."""
    from rbridge_tasks.questions.sources import BENCHMARK_NAMES, load_questions
    from rbridge_tasks.records.released import fetch_released

    # the six have hub defaults; a benchmark of the user's own has its files named in its YAML
    benchmarks = [b for b in dict.fromkeys(benchmarks) if b in BENCHMARK_NAMES]
    missing = []
    for key, load, what in (
        ("traces", fetch_released, "trace file or folder"),
        ("data_dir", load_questions, "benchmark questions laid out like shared/data/"),
    ):
        if metadata.get(key):
            continue
        absent = []
        for benchmark in benchmarks:
            try:
                load(benchmark)
            except RBridgeError:
                absent.append(benchmark)
        if absent:
            missing.append(f"--metadata {key}=... ({what}; none cached for {', '.join(absent)})")
    return missing


def _missing_mask_rows(subsets: list[str], metadata: dict[str, Any]) -> list[str]:
    """The span-mask subsets that are neither given (`mask_data`) nor in the local cache."""
    from rbridge_tasks.records.mask_rows import OPTION, load_mask_rows

    if metadata.get("mask_data"):
        return []
    absent = []
    for subset in dict.fromkeys(subsets):
        try:
            load_mask_rows(subset)
        except RBridgeError:
            absent.append(subset)
    if not absent:
        return []
    return [f"{OPTION}=... (span-mask rows; none cached for {', '.join(absent)})"]


def _check_pack(path: Path, benchmarks: dict[str, tuple[str, ...]], limit: float | None) -> None:
    """What would otherwise fail only after the model has loaded: a pack without some of the
    requested benchmarks (say which tasks it can run), and under data parallelism a benchmark
    with fewer documents than ranks (`task.RBridgeTask.build_all_requests`)."""
    from rbridge_tasks.harness.task import documents_in_run
    from rbridge_tasks.records.files import pack_counts

    counts = pack_counts(path)
    if counts is None:  # a damaged file: the task's own read names the damage
        return
    for task, needs in benchmarks.items():
        missing = [b for b in needs if b not in counts]
        if missing:
            runnable = [f"rbridge_{b}" for b in needs if b in counts]
            hint = (
                f"run the benchmarks it has with --tasks {','.join(runnable)}"
                if runnable
                else "it has none of them"
            )
            raise RBridgeError(
                f"--tasks {task}: --metadata traces={path} has no traces for "
                f"{', '.join(missing)} (it has {', '.join(sorted(counts)) or 'none'}); {hint}, "
                "or add the missing packs"
            )
    ranks = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if ranks > 1:
        for benchmark in dict.fromkeys(b for needs in benchmarks.values() for b in needs):
            count = counts.get(benchmark)
            documents = None if count is None else documents_in_run(count, limit, None)
            if documents is not None and documents < ranks:
                raise RBridgeError(
                    f"rbridge_{benchmark}: {documents} document(s) for {ranks} data-parallel "
                    "ranks; lm-eval needs at least one document per rank: run it with fewer "
                    "processes (or more documents, e.g. a larger --limit)"
                )


def _check_output_path(path: Path) -> None:
    """lm-eval writes results only at the end and merely logs a failure to; check before."""
    folder = path.parent if path.suffix == ".json" else path
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif os.statvfs(existing).f_flag & os.ST_RDONLY:
        problem = f"{existing} is on a read-only file system"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"no permission to write in {existing}"
    if problem:
        raise RBridgeError(
            f"--output_path {path}: the results could not be written: {problem}; choose "
            "another path"
        )


def _check_results_saved(output_path: str | None, started: float) -> None:
    """lm-eval logs a failed save (a full disk, a folder removed during the run) and exits 0."""
    if not output_path or os.environ.get("RANK", "0") != "0":
        return
    path = Path(output_path).expanduser()
    pattern = f"{path.stem}_*.json" if path.suffix == ".json" else "*/results_*.json"
    base = path.parent if path.suffix == ".json" else path
    if not any(p.stat().st_mtime >= started - 1 and _whole_json(p) for p in base.glob(pattern)):
        raise RBridgeError(
            f"--output_path {output_path}: lm-eval could not save the results there (its log "
            "above says why, e.g. a full disk); the scores were computed but not written"
        )


def _whole_json(path: Path) -> bool:
    """A full disk can leave an empty or truncated results file behind."""
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _check_tokenizer(model_args: dict[str, Any], metadata: dict[str, Any]) -> None:
    """The task cuts traces with `tokenizer`; a different one from the model's gives wrong NLLs."""
    task_tokenizer = metadata.get("tokenizer")
    model_tokenizer = model_args.get("tokenizer") or model_args.get("pretrained")
    if task_tokenizer and model_tokenizer and str(task_tokenizer) != str(model_tokenizer):
        raise RBridgeError(
            f"--metadata tokenizer={task_tokenizer} differs from the model's tokenizer "
            f"{model_tokenizer}: the task would cut traces at tokens the model does not use; "
            "drop --metadata tokenizer (it defaults to the model's) or pass the same name"
        )


def _unknown_tasks(message: str, include_path: list[str]) -> str:
    from lm_eval.tasks import TaskManager

    names = TaskManager(include_path=include_path).all_tasks
    hints = []
    for task in message.removeprefix("Tasks not found:").split(","):
        close = difflib.get_close_matches(task.strip(), names, n=1, cutoff=0.6)
        hints.append(f"{task.strip()} (did you mean {close[0]}?)" if close else task.strip())
    return f"--tasks: no such task: {', '.join(hints)}; `lm_eval ls tasks` lists them"


def _epilog() -> str:
    from rbridge_tasks.harness.options import METADATA_KEYS

    keys = "\n".join(f"  {key:<19} {text}" for key, text in METADATA_KEYS.items())
    return (
        "rBridge (all lm-eval flags above work unchanged):\n"
        f"tasks and groups:\n  {', '.join(our_tasks())}\n"
        f"models:\n  {', '.join(MODELS)}  (lm-eval's hf/vllm, answering each trace in one "
        "forward pass), besides lm-eval's own, which answer through their loglikelihood\n"
        f"task options (--metadata key=value):\n{keys}\n"
        "example:\n  rbridge eval --model hf-rbridge --model_args pretrained=DIR --tasks "
        "rbridge_gsm8k --metadata traces=FILE data_dir=DIR\n"
    )
