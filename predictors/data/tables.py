"""Bring published accuracy tables (CSV, YAML) in as lm-eval 0.4-layout results files.

lm-eval's results JSON stays the one exchange format: a table row becomes one results file with
`results[task]["<metric>,none"]`, `higher_is_better`, `config.model_args` (pretrained, revision)
and `configs[task].metadata` (chosen columns plus `--set` constants), plus an `rbridge_import`
block naming the table and row it came from. Everything downstream then reads it like any run.

Column mapping, one `--metric` per score: `COLUMN=TASK:METRIC[:higher|:lower]`, e.g.
`GSM8K=gsm8k:exact_match` or `eval/downstream_bpb/arc_challenge_test_rc_5shot_bpb=arc_c:bpb:lower`.
Nested YAML (a list of records) is flattened with dots: `results.en_pre.GSM8K`.
Empty cells mean "not evaluated": the metric is left out of that row's file and counted, so a
later fit that needs it fails with a clear "no metric" message instead of reading a zero.
CSV cells are read as the text written: a metadata cell `1` stays the integer 1 (pandas would
make a column holding `1` and `0.5` all floats, and `--where mult=1` would then miss it), `0.5` a
float, anything else a string.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from predictors.choices import ROW_CHOICES
from predictors.data.ingest import KNOWN_DIRECTIONS
from predictors.data.join import compare, parse_condition, read_csv_records
from rbridge_tasks.core.atomic import atomic_write_text
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import read_error


@dataclass(frozen=True)
class MetricColumn:
    """One `--metric COLUMN=TASK:METRIC[:higher|:lower]`: which column becomes which score."""

    column: str
    task: str
    metric: str
    higher_is_better: bool

    @classmethod
    def parse(cls, spec: str) -> MetricColumn:
        """The direction may be left out only for metric names whose direction is unambiguous
        (`ingest.KNOWN_DIRECTIONS`); otherwise a fit could silently rank the wrong way.

        Raises
        ------
        RBridgeError
            A malformed spec, an unknown direction word, or no direction for an unknown metric.
        """
        column, sep, rest = spec.rpartition("=")
        parts = rest.split(":")
        if not sep or not column or len(parts) not in (2, 3) or not all(parts[:2]):
            raise RBridgeError(f"--metric {spec!r}: expected COLUMN=TASK:METRIC[:higher|:lower]")
        task, metric = parts[0], parts[1]
        if len(parts) == 3:
            if parts[2] not in ("higher", "lower"):
                raise RBridgeError(f"--metric {spec!r}: direction must be 'higher' or 'lower'")
            return cls(column, task, metric, parts[2] == "higher")
        if metric not in KNOWN_DIRECTIONS:
            raise RBridgeError(
                f"--metric {spec!r}: is higher {metric!r} better? append :higher or :lower"
            )
        return cls(column, task, metric, KNOWN_DIRECTIONS[metric])


@dataclass
class TableSpec:
    """How a table maps onto results files: its metric columns, which columns name the model,
    revision and metadata, constants for every row (`--set`), and which rows to keep."""

    metrics: list[MetricColumn]
    model_column: str | None = None  # None: the table's file name (one run per file, e.g. OLMo)
    revision_column: str | None = None
    metadata_columns: dict[str, str] = field(default_factory=dict)  # column -> metadata key
    constants: dict[str, str] = field(default_factory=dict)
    rows: str = "all"
    where: tuple[str, ...] = ()


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or YAML table as a frame; CSV cells stay text here, typed later as written (see
    the module docstring).

    Raises
    ------
    RBridgeError
        A missing or unreadable file, a CSV row of the wrong length, or YAML that is not a list
        of records, naming the file (and line).
    """
    path = Path(path)
    if not path.is_file():
        raise located(str(path), "no such table file")
    if path.suffix.lower() in (".yml", ".yaml"):
        try:
            records = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise read_error(path, exc) from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise located(str(path), f"not valid YAML ({exc})") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise located(str(path), "a YAML table must be a list of records")
        return pd.DataFrame([_flatten(r) for r in records])
    read_csv_records(path)  # pandas would fill a short row with empty cells: "not evaluated"
    try:
        return pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise located(str(path), f"not a readable CSV ({exc})") from None


def table_to_results(path: str | Path, spec: TableSpec) -> tuple[list[dict[str, Any]], list[str]]:
    """One lm-eval-layout results object per selected row, and notes on what was left out."""
    path = Path(path)
    frame = read_table(path)
    needed = [m.column for m in spec.metrics] + list(spec.metadata_columns)
    needed += [c for c in (spec.model_column, spec.revision_column) if c]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise located(str(path), f"no column(s) {missing}; columns: {list(frame.columns)}")
    if spec.rows not in ROW_CHOICES:
        raise RBridgeError(f"--rows must be one of {ROW_CHOICES}")
    selected = frame[
        [all(_row_matches(row, c, path) for c in spec.where) for _, row in frame.iterrows()]
    ]
    if spec.rows == "last":
        selected = selected.tail(1)
    if selected.empty:
        raise located(str(path), f"no row matches {list(spec.where)}")
    results, empty = [], 0
    for index, row in selected.iterrows():
        model = str(row[spec.model_column]) if spec.model_column else path.stem
        revision = _cell_text(row[spec.revision_column]) if spec.revision_column else ""
        metadata = {key: _cell_value(row[col]) for col, key in spec.metadata_columns.items()}
        metadata.update(spec.constants)
        blocks: dict[str, dict[str, Any]] = {}
        directions: dict[str, dict[str, bool]] = {}
        for m in spec.metrics:
            value = row[m.column]
            if pd.isna(value):
                empty += 1
                continue
            try:
                number = float(value)
                problem = "" if math.isfinite(number) else "a finite number"
                shown = number
            except (TypeError, ValueError):
                problem, shown = "a number", value
            if problem:
                raise located(
                    str(path),
                    f"value {shown!r} is not {problem}",
                    line=int(index) + 2,
                    field=m.column,
                )
            blocks.setdefault(m.task, {"alias": m.task})[f"{m.metric},none"] = number
            directions.setdefault(m.task, {})[m.metric] = m.higher_is_better
        if not blocks:
            continue
        model_args = {"pretrained": model, **({"revision": revision} if revision else {})}
        results.append(
            {
                "results": blocks,
                "higher_is_better": directions,
                "configs": {task: {"task": task, "metadata": metadata} for task in blocks},
                "config": {"model": "table", "model_args": model_args},
                "model_name": model,
                "rbridge_import": {
                    "table": str(path.resolve()),
                    "row": int(index),
                    "columns": {m.column: f"{m.task}:{m.metric}" for m in spec.metrics},
                },
            }
        )
    notes = [f"{path.name}: {len(selected)} row(s) selected, {len(results)} written"]
    if empty:
        notes.append(f"{path.name}: {empty} empty cell(s) (not evaluated) left out")
    return results, notes


def plan_results(
    tables: list[str | Path], spec: TableSpec, out_dir: str | Path
) -> tuple[dict[Path, dict[str, Any]], list[str]]:
    """Every table read and checked, before anything is written: {target file: results} (see
    `result_path`) and the notes. Two tables that would write the same file (same file name,
    same row) are refused: one would silently replace the other."""
    planned: dict[Path, dict[str, Any]] = {}
    origin: dict[Path, str] = {}
    notes: list[str] = []
    for table in tables:
        results, table_notes = table_to_results(table, spec)
        for record in results:
            target = result_path(record, out_dir, table)
            if target in origin:
                raise located(
                    str(table),
                    f"would write {target}, as {origin[target]} does (tables with the same "
                    "file name); rename one of them or import them into different --out-dir",
                )
            planned[target], origin[target] = record, str(table)
        notes += table_notes
    return planned, notes


def result_path(record: dict[str, Any], out_dir: str | Path, table: str | Path) -> Path:
    """`<out>/<model>/results_<table>_row<N>.json`: stable names, so re-imports overwrite."""
    name = f"results_{_sanitize(Path(table).stem)}_row{record['rbridge_import']['row']:05d}.json"
    return Path(out_dir) / _sanitize(record["model_name"]) / name


def write_results(planned: dict[Path, dict[str, Any]]) -> None:
    """Write each planned results file atomically; NaN is refused (JSON has none)."""
    for target, record in planned.items():
        atomic_write_text(target, json.dumps(record, indent=2, allow_nan=False) + "\n")


def _row_matches(row: pd.Series, condition: str, path: Path) -> bool:
    column, op, expected = parse_condition(condition)
    if column not in row.index:
        raise located(str(path), f"--where {condition!r}: no column {column!r}")
    value = row[column]
    if pd.isna(value):
        return False
    try:
        return compare(_cell_text(value), op, expected)
    except ValueError:
        raise located(
            str(path), f"--where {condition!r}: {value!r} is not a number", field=column
        ) from None


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell_value(value: Any) -> Any:
    """A metadata cell as written: an integer, a float, or text (see the module docstring)."""
    if pd.isna(value):
        return None
    if isinstance(value, str):
        for kind in (int, float):
            try:
                number = kind(value)
            except ValueError:
                continue
            return number if math.isfinite(number) else value
        return value
    return value.item() if hasattr(value, "item") else value


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", name)
