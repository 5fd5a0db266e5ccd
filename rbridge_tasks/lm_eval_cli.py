"""`rbridge eval`: lm-eval's own `run` command with the rBridge task directory already included.

lm-eval 0.4.13 discovers neither tasks nor models from installed packages, and its
`--include_path` takes one directory; this wrapper registers `hf-rbridge`/`vllm-rbridge` and
prepends our task directory to whatever the user passes, so every other lm-eval flag works
unchanged. Before lm-eval loads anything it checks what would otherwise fail late and verbosely
(no hub for the traces, questions or model, a misspelt task, `--limit 0`, a task tokenizer that
is not the model's), so those end in one line.
"""

from __future__ import annotations

import difflib
import os
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from rbridge_tasks import tasks_path
from rbridge_tasks.api import with_scoring
from rbridge_tasks.errors import RBridgeError, first_line

OUR_MODELS = ("hf-rbridge", "vllm-rbridge")
HF_MODELS = ("hf", "hf-auto", "huggingface", "hf-rbridge", "vllm", "vllm-rbridge")


def our_tasks() -> dict[str, tuple[str, ...]]:
    """Our task and group names, read from the installed YAMLs, each with its benchmarks."""
    import yaml

    class Loader(yaml.SafeLoader):  # lm-eval's `!function` tags do not matter here
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    configs = [yaml.load(p.read_text("utf-8"), Loader) for p in sorted(tasks_path().glob("*.yaml"))]
    tasks = {
        c["task"]: (c["metadata"]["benchmark"],) for c in configs if isinstance(c.get("task"), str)
    }
    groups = {
        c["group"]: tuple(b for t in c["task"] for b in tasks[t]) for c in configs if "group" in c
    }
    return {**tasks, **groups}


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
    args.metadata = with_scoring(
        args.model, args.metadata if isinstance(args.metadata, dict) else None
    )
    preflight(args)

    from lm_eval.utils import setup_logging

    import rbridge_tasks.models  # noqa: F401  (makes --model hf-rbridge / vllm-rbridge known)

    setup_logging()
    try:
        cli.execute(args)
    except OSError as exc:  # transformers: a model folder or hub id it cannot load
        raise RBridgeError(f"could not load the model: {first_line(exc)}") from exc
    except ValueError as exc:
        if not str(exc).startswith("Tasks not found:"):
            raise
        raise RBridgeError(_unknown_tasks(str(exc), args.include_path)) from exc
    return 0


def preflight(args: Namespace) -> None:
    """Fail in one line, before lm-eval loads a model, on what would otherwise fail late."""
    if args.limit is not None and args.limit <= 0:
        raise RBridgeError(f"--limit {args.limit:g} scores nothing; pass a positive number")
    tasks = [t for name in args.tasks or () for t in str(name).split(",") if t]
    known = our_tasks()
    for task in tasks:
        if task.startswith("rbridge") and task not in known and not task.endswith(".yaml"):
            close = difflib.get_close_matches(task, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; ours are {', '.join(known)}"
            raise RBridgeError(f"--tasks {task}: no such task{hint}")
    model_args = args.model_args if isinstance(args.model_args, dict) else {}
    metadata = args.metadata if isinstance(args.metadata, dict) else {}
    _check_tokenizer(model_args, metadata)
    for key in ("traces", "data_dir"):  # before a model of many GB is loaded for nothing
        if metadata.get(key) and not Path(str(metadata[key])).expanduser().exists():
            raise RBridgeError(f"--metadata {key}={metadata[key]}: no such file or folder")
    from rbridge_tasks.hub import hub_unreachable

    offline = hub_unreachable()
    if not offline:
        return
    missing = _missing_inputs([b for t in tasks for b in known.get(t, ())], metadata)
    pretrained = model_args.get("pretrained")
    if args.model in HF_MODELS and isinstance(pretrained, str) and not _model_available(pretrained):
        what = "no such folder" if pretrained[:1] in "/.~" else "not in the hub cache"
        missing.append(f"--model_args pretrained=DIR ({pretrained!r}: {what})")
    if missing:
        raise RBridgeError(
            f"the Hugging Face hub is unreachable ({offline}); pass {' and '.join(missing)}"
            " (see the README's Set up)"
        )


def _missing_inputs(benchmarks: list[str], metadata: dict[str, Any]) -> list[str]:
    """The hub-only inputs of our tasks that are neither given nor in the local cache."""
    from rbridge_tasks.benchmarks import load_questions
    from rbridge_tasks.released import fetch_released

    benchmarks = list(dict.fromkeys(benchmarks))
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


def _model_available(name: str) -> bool:
    if os.path.isdir(os.path.expanduser(name)):
        return True
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except ValueError:  # not a valid repo id either
        return False


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
    from rbridge_tasks.documents import METADATA_KEYS

    keys = "\n".join(f"  {key:<19} {text}" for key, text in METADATA_KEYS.items())
    return (
        "rBridge (all lm-eval flags above work unchanged):\n"
        f"tasks and groups:\n  {', '.join(our_tasks())}\n"
        f"models:\n  {', '.join(OUR_MODELS)}  (lm-eval's hf/vllm, answering each trace in one "
        "forward pass: document mode), besides lm-eval's own\n"
        f"task options (--metadata key=value):\n{keys}\n"
        "example:\n  rbridge eval --model hf-rbridge --model_args pretrained=DIR --tasks "
        "rbridge_gsm8k --metadata traces=FILE data_dir=DIR\n"
    )
