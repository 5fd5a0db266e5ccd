"""lm-eval results files -> one tidy table, one row per (run, task, metric, filter).

Reads both layouts found in the wild:
- lm-eval 0.4 (`results_<datetime>.json`): `results[task]["<metric>,<filter>"]`, stderr under
  `"<metric>_stderr,<filter>"` (or "N/A"), `higher_is_better[task][metric]`, `n-shot`,
  `n-samples`, `configs[task].metadata`, `config.model_args` as a dict or a "k=v,k=v" string;
- lm-eval 0.3 (e.g. EleutherAI/pythia `evals/`): `results[task]["acc"]`, `"acc_stderr"`, no
  filters (recorded as "none"), `config.model_args` a string, `config.num_fewshot`, no direction
  (inferred from well-known metric names, else left unknown for the user to state).

Structure errors (not JSON, no `results` object) fail at once, naming the file. A value that is
not a number is kept as NaN with the reason in `problem`: it only becomes an error if that value
is selected for a fit, so one odd metric does not block unrelated work.

Per-item scores come from the samples JSONL lm-eval writes next to the results file
(`samples_<task>_<datetime>.jsonl`); they are read on demand (they can be large).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from predictors.choices import DEFAULT_PATTERN
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import iter_jsonl, read_json

COLUMNS = [
    "run",
    "source",
    "model",
    "revision",
    "task",
    "metric",
    "filter",
    "value",
    "stderr",
    "higher_is_better",
    "num_fewshot",
    "n_samples",
    "lm_eval_version",
    "problem",
    "metadata",
]
# lm-eval 0.3 files carry no direction; these names are unambiguous across harnesses.
KNOWN_DIRECTIONS = {
    **dict.fromkeys(
        [
            "acc",
            "acc_norm",
            "exact_match",
            "em",
            "f1",
            "mc1",
            "mc2",
            "bleu",
            "pass@1",
            "pass_at_1",
            "accuracy",
            "pct_correct",
        ],
        True,
    ),
    **dict.fromkeys(
        [
            "ppl",
            "perplexity",
            "word_perplexity",
            "byte_perplexity",
            "bits_per_byte",
            "bpb",
            "nll",
            "loss",
            "rbridge_nll",
            "trace_nll",
            "trace_bpb",
        ],
        False,
    ),
}
MODEL_ARG_NAMES = ("peft", "delta", "pretrained", "model", "path", "engine")
NON_METRIC_KEYS = {"name", "alias", "sample_len", "sample_count", " "}


def discover(paths: Iterable[str | Path], pattern: str = DEFAULT_PATTERN) -> list[Path]:
    """Files given directly, plus files matching `pattern` anywhere under given directories."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            matches = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not matches:
                raise RBridgeError(
                    f"{path}: no files matching {pattern!r} in this directory tree (lm-eval 0.3 "
                    "trees such as pythia evals/ name files differently: pass --pattern '*.json')"
                )
            found += matches
        elif path.is_file():
            found.append(path)
        else:
            raise located(str(path), "no such file or directory")
    return list(dict.fromkeys(found))


def load_results(paths: Iterable[str | Path], pattern: str = DEFAULT_PATTERN) -> pd.DataFrame:
    """Every results file under `paths` (see `discover`) as one table with `COLUMNS`.

    Raises
    ------
    RBridgeError
        A path that does not exist, a folder with no matching file, or a file that is not an
        lm-eval results file, named with the field at fault.
    """
    rows: list[dict[str, Any]] = []
    for path in discover(paths, pattern):
        rows += read_results_file(path)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # Keep True/False/None as Python objects: an all-bool column would become numpy bools.
    frame["higher_is_better"] = pd.Series([r["higher_is_better"] for r in rows], dtype=object)
    return frame


def read_results_file(path: Path) -> list[dict[str, Any]]:
    """One results file's rows (dicts keyed by `COLUMNS`), in either lm-eval layout."""
    source = str(path)
    data = _read_json(path)
    results = data.get("results")
    if not isinstance(results, dict) or not results:
        raise located(
            source, "not an lm-eval results file: no non-empty 'results' object", field="results"
        )
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise located(source, "'config' must be an object", field="config")
    model_args = parse_model_args(config.get("model_args"), source)
    old_layout = "lm_eval_version" not in data and not any(
        "," in key for block in results.values() if isinstance(block, dict) for key in block
    )
    run = {
        "run": source,
        "source": source,
        "model": _model_name(model_args, data, config),
        "revision": str(model_args.get("revision") or config.get("model_revision") or ""),
        "lm_eval_version": str(data.get("lm_eval_version") or ("0.3" if old_layout else "")),
    }
    directions = data.get("higher_is_better") or {}
    configs = data.get("configs") or {}
    rows = []
    for task, block in results.items():
        if not isinstance(block, dict):
            raise located(
                source, "task results must be an object of metric values", field=f"results.{task}"
            )
        metadata = dict(model_args)
        task_config = configs.get(task) if isinstance(configs, dict) else None
        if task_config is not None and not isinstance(task_config, dict):
            raise located(source, "a task's config must be an object", field=f"configs.{task}")
        task_meta = (task_config or {}).get("metadata")
        if task_meta is not None and not isinstance(task_meta, dict):
            raise located(
                source, "task metadata must be an object", field=f"configs.{task}.metadata"
            )
        metadata.update(task_meta or {})
        common = {
            **run,
            "task": task,
            "num_fewshot": _num_fewshot(data, config, task),
            "n_samples": _n_samples(data, task),
            "metadata": metadata,
        }
        task_directions = directions.get(task, {}) if isinstance(directions, dict) else {}
        for (metric, filt), (value, stderr, problem) in _metric_cells(block, old_layout).items():
            hib = task_directions.get(metric) if isinstance(task_directions, dict) else None
            rows.append(
                {
                    **common,
                    "metric": metric,
                    "filter": filt,
                    "value": value,
                    "stderr": stderr,
                    "problem": problem,
                    "higher_is_better": hib
                    if isinstance(hib, bool)
                    else KNOWN_DIRECTIONS.get(metric),
                }
            )
    if not rows:
        raise located(source, "no metric values in any task", field="results")
    return rows


def parse_model_args(raw: Any, source: str) -> dict[str, Any]:
    """lm-eval stores model_args as a dict (CLI) or as the "k=v,k=v" string it was given."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, str):
        parsed = {}
        for part in raw.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise located(
                    source, f"model_args entry {part!r} is not key=value", field="config.model_args"
                )
            parsed[key.strip()] = value.strip()
        return parsed
    raise located(
        source,
        f"model_args must be a string or an object, got {type(raw).__name__}",
        field="config.model_args",
    )


def samples_path(source: str | Path, task: str) -> Path | None:
    """lm-eval writes task T's samples as `samples_T_<datetime>.jsonl` beside the results."""
    path = Path(source)
    if not path.name.startswith("results_"):
        return None
    stamp = path.name[len("results_") : -len(".json")]
    candidate = path.with_name(f"samples_{task}_{stamp}.jsonl")
    return candidate if candidate.is_file() else None


def read_items(source: str | Path, task: str, metric: str, filt: str) -> dict[str, float]:
    """Per-item values of one metric, keyed by the document's `id` field (else lm-eval's doc_id),
    so the item bootstrap resamples the same questions in every run.

    Raises
    ------
    RBridgeError
        No samples file beside `source` (lm-eval ran without `--log_samples`), a value that is
        not one finite number, a duplicated id, or no value under `filt`, naming file and line.
    """
    path = samples_path(source, task)
    if path is None:
        raise located(
            str(source),
            f"no samples file for task {task!r} beside it (run lm-eval "
            "with --log_samples, or use the 'recipes' bootstrap)",
        )
    items: dict[str, float] = {}
    for line_no, record in iter_jsonl(path, allow_nan=True):
        if not isinstance(record, dict):
            raise located(str(path), "a sample must be a JSON object", line=line_no)
        if record.get("filter", "none") != filt:
            continue
        doc = record.get("doc")
        key = str(doc["id"]) if isinstance(doc, dict) and "id" in doc else str(record.get("doc_id"))
        value = record.get(metric)
        if not _is_number(value) or not math.isfinite(value):
            raise located(
                str(path),
                f"per-item value {value!r} is not one finite number (the item "
                "bootstrap needs a metric that is a mean of per-item numbers)",
                line=line_no,
                record_id=key,
                field=metric,
            )
        if key in items:
            raise located(str(path), "duplicate document id", line=line_no, record_id=key)
        items[key] = float(value)
    if not items:
        raise located(str(path), f"no per-item values for metric {metric!r} with filter {filt!r}")
    return items


def _read_json(path: Path) -> dict[str, Any]:
    # NaN and Infinity are read (lm-eval writes them), and flagged per value by `_as_float`.
    data = read_json(path, allow_nan=True)
    if not isinstance(data, dict):
        raise located(str(path), "not an lm-eval results file: top level is not an object")
    return data


def _metric_cells(block: dict[str, Any], old_layout: bool) -> dict[tuple[str, str], tuple]:
    """{(metric, filter): (value, stderr, problem)} from one task's results object."""
    values: dict[tuple[str, str], Any] = {}
    stderrs: dict[tuple[str, str], Any] = {}
    for key, raw in block.items():
        if key in NON_METRIC_KEYS:
            continue
        if "," in key:
            name, filt = key.split(",", 1)
        elif old_layout:
            name, filt = key, "none"
        else:
            continue
        if name.endswith("_stderr"):
            stderrs[(name[: -len("_stderr")], filt)] = raw
        else:
            values[(name, filt)] = raw
    cells = {}
    for cell, raw in values.items():
        value, problem = _as_float(raw)
        stderr, _ = _as_float(stderrs.get(cell))
        cells[cell] = (value, stderr, problem)
    return cells


def _as_float(raw: Any) -> tuple[float, str]:
    if _is_number(raw):
        value = float(raw)
        if math.isfinite(value):
            return value, ""
        return value, "value is NaN" if math.isnan(value) else f"value is {raw!r}, not finite"
    if raw is None or raw == "N/A":
        return float("nan"), f"value is {raw!r}"
    return float("nan"), f"value {raw!r} is not a number"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_name(model_args: dict[str, Any], data: dict[str, Any], config: dict[str, Any]) -> str:
    for name in MODEL_ARG_NAMES:
        if model_args.get(name):
            return str(model_args[name])
    return str(data.get("model_name") or config.get("model") or "")


def _num_fewshot(data: dict[str, Any], config: dict[str, Any], task: str) -> Any:
    shots = data.get("n-shot")
    if isinstance(shots, dict) and task in shots:
        return shots[task]
    return config.get("num_fewshot")


def _n_samples(data: dict[str, Any], task: str) -> Any:
    counts = data.get("n-samples")
    if isinstance(counts, dict) and isinstance(counts.get(task), dict):
        return counts[task].get("effective")
    return None
