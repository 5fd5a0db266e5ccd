"""Pick the proxy score and the target accuracy out of the tidy table and pair them by recipe.

A "side" (proxy or target) is a task (a glob such as `hendrycksTest-*` averages the matching
tasks, unweighted), a metric, a filter and `--where` conditions on run fields. Runs are paired
by a join key: one or more fields (`recipe` from `--metadata recipe=...`, or `revision`, or any
`model_args` entry), or by a manifest CSV that names each results file's role and key.

Nothing is dropped silently: runs without a partner are returned in `proxy_only`/`target_only`,
duplicated keys are an error unless `on_duplicate="mean"` (then they are averaged and listed).

Fields usable in `--where`, `--join-on`, `--group-by`, `--within`: run, source, model, revision,
task, num_fewshot, lm_eval_version, and every key of the run's metadata (`config.model_args`
merged with `configs[task].metadata`). `FIELD=VALUE` is a glob on the value's text, and for a
value stored as a number also a numeric equality: `mult=1` matches a run whose `mult` is 1 or 1.0.
`--within` blocks come from the proxy runs (the decisions are made at the proxy scale).
"""

from __future__ import annotations

import csv
import fnmatch
import operator
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.choices import DUPLICATE_POLICIES
from predictors.data.ingest import KNOWN_DIRECTIONS, load_results, read_items
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import read_error
from rbridge_tasks.formula.weights import MINMAX_SCOPES

RUN_FIELDS = ("run", "source", "model", "revision", "task", "num_fewshot", "lm_eval_version")
WHERE = re.compile(r"^\s*(?P<field>[^=!<>]+?)\s*(?P<op>!=|<=|>=|=|<|>)\s*(?P<value>.*?)\s*$")
NUMERIC_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
MANIFEST_ROLES = ("proxy", "target")
# Accuracy-like metrics lm-eval reports as fractions in [0, 1] (see `_check_fraction_scale`).
FRACTION_METRICS = frozenset(
    {"acc", "acc_norm", "exact_match", "em", "mc1", "mc2", "pass@1", "pass_at_1", "accuracy", "f1"}
)


@dataclass(frozen=True)
class Side:
    """Which score of which runs: one side of the proxy/target pairing."""

    name: str
    task: str
    metric: str
    filter: str | None = None
    where: tuple[str, ...] = ()
    higher_is_better: bool | None = None

    def describe(self) -> dict[str, Any]:
        """The side as the JSON outputs and the fit file record it (its name is the key)."""
        return {
            "task": self.task,
            "metric": self.metric,
            "filter": self.filter,
            "where": list(self.where),
            "higher_is_better": self.higher_is_better,
        }


@dataclass
class Scores:
    """One value per run for one side, with what was resolved on the way."""

    table: pd.DataFrame  # run, source, model, revision, label fields..., value, stderr, metadata
    side: Side  # with filter and higher_is_better resolved
    tasks: list[str]


@dataclass
class Joined:
    """Proxy and target runs paired by key, with everything that did not pair kept beside the
    pairs (`proxy_only`, `target_only`, `duplicates`) so the reports can say what was left out.
    """

    pairs: pd.DataFrame  # key, [group], [block], x, x_stderr, y, y_stderr, [z], runs, fields
    proxy: Side
    target: Side
    tasks: dict[str, list[str]]
    on: str
    proxy_only: pd.DataFrame
    target_only: pd.DataFrame
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    within: str | None = None  # the field whose blocks `pairs["block"]` holds

    def report(self) -> dict[str, Any]:
        """The join as the JSON outputs show it: what was used and what was left out, and why."""
        return {
            "join_on": self.on,
            "n_pairs": len(self.pairs),
            "proxy": {**self.proxy.describe(), "tasks": self.tasks["proxy"]},
            "target": {**self.target.describe(), "tasks": self.tasks["target"]},
            "unjoined_proxy_runs": _run_list(self.proxy_only),
            "unjoined_target_runs": _run_list(self.target_only),
            "duplicates": self.duplicates,
            "notes": self.notes,
        }


def field_value(row: pd.Series, name: str) -> Any:
    """A run field by name: a tidy-table column first, else a metadata key; None if absent."""
    if name in RUN_FIELDS:
        return row[name]
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    return metadata.get(name)


def run_fields(row: pd.Series) -> dict[str, Any]:
    """What a fit records of each run: its model, revision and metadata."""
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    return {"model": row["model"], "revision": row["revision"], **metadata}


def available_fields(row: pd.Series) -> list[str]:
    """The field names a run offers, for the error that names a missing one."""
    metadata = row["metadata"] if isinstance(row["metadata"], dict) else {}
    return [*RUN_FIELDS, *sorted(metadata)]


def parse_condition(condition: str) -> tuple[str, str, str]:
    """`field=glob`, `field!=glob`, or a numeric comparison `field<=3.5` (also <, >, >=)."""
    parsed = WHERE.match(condition)
    if not parsed:
        raise RBridgeError(
            f"--where {condition!r}: expected FIELD=VALUE, FIELD!=VALUE or a "
            "numeric comparison such as FIELD<=2"
        )
    return parsed["field"], parsed["op"], parsed["value"]


def compare(value: Any, op: str, expected: str) -> bool:
    """Glob match for = and != (and numeric equality for a value stored as a number), numeric
    comparison otherwise (ValueError if not numbers)."""
    if op in ("=", "!="):
        hit = fnmatch.fnmatchcase(str(value), expected) or _same_number(value, expected)
        return hit if op == "=" else not hit
    return NUMERIC_OPS[op](float(value), float(expected))


def _same_number(value: Any, expected: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return float(value) == float(expected)
    except ValueError:
        return False


def matches(row: pd.Series, condition: str) -> bool:
    """Whether a run meets one `--where` condition; a run without the field does not.

    Raises
    ------
    RBridgeError
        A malformed condition, or a numeric comparison on a value that is not a number
        (naming the run's file and the field).
    """
    name, op, expected = parse_condition(condition)
    value = field_value(row, name)
    if value is None:
        return False
    try:
        return compare(value, op, expected)
    except ValueError:
        raise located(
            str(row["source"]),
            f"--where {condition!r}: value {value!r} is not a number",
            field=name,
        ) from None


def key_of(row: pd.Series, on: str, sep: str = "|") -> str:
    """The join key: the named fields' values, joined by `sep` when there are several."""
    parts = []
    for name in _split_fields(on):
        value = field_value(row, name)
        if value is None or value == "":
            raise located(
                str(row["source"]),
                f"join field {name!r} is missing for task "
                f"{row['task']!r}; fields here: {', '.join(available_fields(row))}",
                field=name,
            )
        parts.append(str(value))
    return sep.join(parts)


def task_matches(task: str, spec: str) -> bool:
    """A side's task is a name, a glob, or a comma-separated list of them (e.g. the six MMLU-Pro
    STEM subtasks, which no single glob selects)."""
    return any(fnmatch.fnmatchcase(task, part.strip()) for part in spec.split(","))


def select_scores(tidy: pd.DataFrame, side: Side) -> Scores:
    """One value per run for a side, with clear errors for every way the selection can fail."""
    if tidy.empty:
        raise RBridgeError("no results were loaded")
    task_rows = tidy[[task_matches(t, side.task) for t in tidy["task"]]]
    if task_rows.empty:
        tasks = sorted(set(tidy["task"]))
        raise RBridgeError(
            f"{side.name}: no results for task {side.task!r}; tasks present: {_preview(tasks)}"
        )
    keep = [all(matches(row, c) for c in side.where) for _, row in task_rows.iterrows()]
    rows = task_rows[keep]
    if rows.empty:
        models = sorted(set(task_rows["model"]))
        raise RBridgeError(
            f"{side.name}: no run with task {side.task!r} matches where "
            f"{list(side.where)}; models with that task: {_preview(models)}"
        )
    with_metric = rows[rows["metric"] == side.metric]
    for source, run_rows in rows.groupby("source", sort=True):
        if not (run_rows["metric"] == side.metric).any():
            raise located(
                str(source),
                f"{side.name} task {run_rows['task'].iloc[0]!r} has no "
                f"metric {side.metric!r} (metrics: "
                f"{', '.join(sorted(set(run_rows['metric'])))})",
                field=f"results.{run_rows['task'].iloc[0]}",
            )
    filt = _resolve_filter(with_metric, side)
    chosen = with_metric[with_metric["filter"] == filt]
    for _, row in chosen.iterrows():
        if row["problem"]:
            raise located(
                str(row["source"]),
                f"{side.name} {row['problem']}",
                field=f"results.{row['task']}.{side.metric},{filt}",
            )
    tasks = sorted(set(chosen["task"]))
    if side.metric in FRACTION_METRICS:
        _check_fraction_scale(chosen, side)
    table = _per_run(chosen, tasks, side)
    resolved = Side(
        name=side.name,
        task=side.task,
        metric=side.metric,
        filter=filt,
        where=side.where,
        higher_is_better=_resolve_direction(chosen, side),
    )
    return Scores(table=table, side=resolved, tasks=tasks)


def join(
    tidy: pd.DataFrame,
    proxy: Side,
    target: Side,
    *,
    on: str = "recipe",
    group_by: str | None = None,
    on_duplicate: str = "error",
    intermediate: Side | None = None,
    within: str | None = None,
) -> Joined:
    """Pair proxy and target runs with equal keys; see the module docstring for the rules.

    Parameters
    ----------
    tidy
        `ingest.load_results`'s table.
    proxy, target
        The two sides; `intermediate` a third, read from the target runs (the ladder's).
    on, group_by, within
        Field names (comma-separated for several): the join key, separate fits per group,
        and the blocks decisions are compared within.
    on_duplicate
        `error`, or `mean` to average runs that share a key (listed in `duplicates`).

    Raises
    ------
    RBridgeError
        An unknown `on_duplicate`, a side that selects no run, a run without a key field, or
        duplicated keys under `error`, each naming the file and field.
    """
    if on_duplicate not in DUPLICATE_POLICIES:
        raise RBridgeError(f"on_duplicate must be one of {DUPLICATE_POLICIES}")
    proxy_scores = select_scores(tidy, proxy)
    target_scores = select_scores(tidy, target)
    duplicates: list[dict[str, Any]] = []
    sides = {}
    for scores in (proxy_scores, target_scores):
        table = scores.table.copy()
        table["key"] = [key_of(row, on) for _, row in table.iterrows()]
        if group_by:
            table["group"] = [key_of(row, group_by) for _, row in table.iterrows()]
        if within and scores is proxy_scores:
            table["block"] = [key_of(row, within) for _, row in table.iterrows()]
        table["fields"] = [run_fields(row) for _, row in table.iterrows()]
        if intermediate is not None and scores is target_scores:
            table["z"] = _intermediate_values(tidy, intermediate, table)
        sides[scores.side.name] = _deduplicate(table, scores.side.name, on_duplicate, duplicates)
    p, t = sides[proxy.name], sides[target.name]
    common = sorted(set(p["key"]) & set(t["key"]), key=natural_key)
    if not common:
        raise RBridgeError(
            f"no {on!r} value is shared by proxy and target runs: proxy keys "
            f"{_preview(sorted(p['key']))}, target keys {_preview(sorted(t['key']))}"
        )
    for name, table in sides.items():
        _warn_on_differing_runs(table[table["key"].isin(common)], name, on)
    pairs = _pairs(p.set_index("key").loc[common], t.set_index("key").loc[common], group_by)
    joined = Joined(
        pairs=pairs,
        proxy=proxy_scores.side,
        target=target_scores.side,
        tasks={"proxy": proxy_scores.tasks, "target": target_scores.tasks},
        on=on,
        proxy_only=p[~p["key"].isin(common)],
        target_only=t[~t["key"].isin(common)],
        duplicates=duplicates,
        within=within,
    )
    for name, left in (("proxy", joined.proxy_only), ("target", joined.target_only)):
        if len(left):
            joined.notes.append(
                f"{len(left)} {name} run(s) have no partner on {on!r} and are "
                f"not in the fit: keys {_preview(sorted(left['key']))}"
            )
    return joined


def load_manifest(path: str | Path) -> pd.DataFrame:
    """Manifest CSV: columns path (relative to the manifest), role (proxy|target), key, [group].

    The roles, keys and groups are written into each run's metadata as `role`, `manifest_key` and
    `manifest_group`, so the usual selection and join machinery applies unchanged. A file may be
    listed more than once (one target shared by two proxies): each line is its own run.
    """
    path = Path(path)
    records = read_csv_records(path)
    required = {"path", "role", "key"}
    if not records or not required <= set(records[0][1]):
        raise located(
            str(path),
            f"manifest needs a header with columns {sorted(required)} (and optionally group)",
            line=1,
        )
    frames = []
    for line_no, record in records:
        results_path = (path.parent / record["path"]).resolve()
        if not results_path.is_file():
            raise located(
                str(path), f"results file {record['path']!r} not found", line=line_no, field="path"
            )
        if record["role"] not in MANIFEST_ROLES:
            raise located(
                str(path),
                f"role must be one of {MANIFEST_ROLES}, got {record['role']!r}",
                line=line_no,
                field="role",
            )
        if not record["key"]:
            raise located(str(path), "empty key", line=line_no, field="key")
        frame = load_results([results_path])
        extra = {"role": record["role"], "manifest_key": record["key"]}
        if record.get("group"):
            extra["manifest_group"] = record["group"]
        frame["metadata"] = [{**meta, **extra} for meta in frame["metadata"]]
        frame["run"] = [f"{run}#manifest-line-{line_no}" for run in frame["run"]]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_csv_records(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line, {column: cell}) per row of a CSV file with a header; a UTF-8 BOM (Excel's) is
    fine, a row with more or fewer cells than the header is an error naming its line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            rows = [(reader.line_num, row) for row in reader if row]
    except OSError as exc:
        raise read_error(path, exc) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise located(str(path), f"not a readable CSV file ({exc})") from None
    for line, row in rows:
        if len(row) != len(header):
            raise located(
                str(path), f"{len(row)} cells, but the header has {len(header)}", line=line
            )
    return [(line, dict(zip(header, row, strict=True))) for line, row in rows]


def item_matrix(sources: list[str], side: Side, tasks: list[str]) -> np.ndarray:
    """(n_runs, n_items) per-item scores for the item bootstrap, columns aligned by document id.

    Refuses when the runs did not score the same items, or when the per-item mean does not
    reproduce the aggregate in the results file (then the metric is not a plain mean and an item
    bootstrap of it would be wrong).
    """
    if len(tasks) != 1:
        raise RBridgeError(f"the item bootstrap needs one task, {side.name} matches {tasks}")
    per_run = [
        read_items(source, tasks[0], side.metric, side.filter or "none") for source in sources
    ]
    ids = sorted(per_run[0])
    for source, items in zip(sources, per_run, strict=True):
        if sorted(items) != ids:
            raise located(
                source,
                f"{side.name} runs scored different items of {tasks[0]!r} "
                f"({len(items)} vs {len(ids)}); the item bootstrap needs the same items",
            )
    return np.array([[items[i] for i in ids] for items in per_run])


def check_item_means(matrix: np.ndarray, values: Any, sources: list[str], side: Side) -> None:
    """Refuse the item bootstrap for a metric that is not the mean of its per-item values
    (a perplexity, a weighted mean): resampling items would bootstrap another quantity."""
    for row, value, source in zip(matrix, np.asarray(values, dtype=float), sources, strict=True):
        if not np.isclose(row.mean(), value, rtol=1e-6, atol=1e-9):
            raise located(
                source,
                f"{side.name} metric {side.metric!r} is not the mean of its "
                f"per-item values ({row.mean():.6g} vs {value:.6g}); use the "
                "'recipes' bootstrap",
            )


def _intermediate_values(
    tidy: pd.DataFrame, intermediate: Side, target: pd.DataFrame
) -> list[float]:
    """The ladder's middle quantity, read from the same target runs."""
    values = select_scores(tidy, intermediate).table.set_index("run")["value"]
    for run, source in zip(target["run"], target["source"], strict=True):
        if run not in values.index:
            raise located(
                str(source),
                f"intermediate metric {intermediate.metric!r} of task "
                f"{intermediate.task!r} is missing from this target run",
                field=f"results.{intermediate.task}",
            )
    return [float(values[run]) for run in target["run"]]


class RunMismatchWarning(UserWarning):
    """Fitted runs were scored differently (sample count, trace file, MinMax scope)."""


def _warn_on_differing_runs(table: pd.DataFrame, side: str, on: str) -> None:
    """Runs fitted together should differ only in the recipe; a different sample count (a
    --limit), trace file or MinMax scope changes the score itself."""
    fields = {
        "n-samples": lambda row: row["n_samples"],
        "traces": lambda row: field_value(row, "traces"),
        "minmax_scope": lambda row: field_value(row, "minmax_scope") or MINMAX_SCOPES[0],
    }
    for name, value_of in fields.items():
        runs: dict[str, list[str]] = {}
        for _, row in table.iterrows():
            value = value_of(row)
            runs.setdefault("(not set)" if value is None else str(value), []).append(row["key"])
        if len(runs) > 1:
            listed = "; ".join(f"{value}: {on} {_preview(keys)}" for value, keys in runs.items())
            warnings.warn(
                f"the fitted {side} runs differ in {name} ({listed}); their "
                "scores may not be comparable",
                RunMismatchWarning,
                stacklevel=3,
            )


def _check_fraction_scale(rows: pd.DataFrame, side: Side) -> None:
    """lm-eval reports accuracies as fractions; tables from elsewhere often use percent. Fitting
    a mix of the two gives a wrong curve with no error, so a mix is refused."""
    percent = rows[rows["value"] > 1]
    if percent.empty or len(percent) == len(rows):
        out_of_range = rows[(rows["value"] < 0) | (rows["value"] > 100)]
        if out_of_range.empty:
            return
        row = out_of_range.iloc[0]
        raise located(
            str(row["source"]),
            f"{side.name} {side.metric} {row['value']!r} is not an accuracy (0-1, or percent)",
            field=f"results.{row['task']}",
        )
    fractions = rows[rows["value"] <= 1]
    raise RBridgeError(
        f"{side.name}: {side.metric!r} mixes percentages and fractions: above 1 in "
        f"{_preview(sorted(set(percent['source'])))}, at most 1 in "
        f"{_preview(sorted(set(fractions['source'])))}; divide the percentages by 100 (lm-eval "
        "reports fractions)"
    )


def _resolve_filter(rows: pd.DataFrame, side: Side) -> str:
    filters = sorted(set(rows["filter"]))
    if side.filter is not None:
        if side.filter not in filters:
            raise RBridgeError(
                f"{side.name}: metric {side.metric!r} has no filter "
                f"{side.filter!r}; filters present: {filters}"
            )
        return side.filter
    if len(filters) > 1:
        raise RBridgeError(
            f"{side.name}: metric {side.metric!r} is reported under several "
            f"filters {filters}; choose one with --{side.name}-filter"
        )
    return filters[0]


def _resolve_direction(rows: pd.DataFrame, side: Side) -> bool:
    if side.higher_is_better is not None:
        return side.higher_is_better
    stated: dict[bool, list[str]] = {}
    for value, source in zip(rows["higher_is_better"], rows["source"], strict=True):
        if isinstance(value, (bool, np.bool_)):
            stated.setdefault(bool(value), []).append(str(source))
    if len(stated) == 1:
        return next(iter(stated))
    if len(stated) > 1:
        raise RBridgeError(
            f"{side.name}: results files disagree on whether higher {side.metric!r} is better "
            f"(higher: {_preview(sorted(set(stated[True])))}; lower: "
            f"{_preview(sorted(set(stated[False])))}); state it with "
            f"--{side.name}-higher-is-better"
        )
    if side.metric in KNOWN_DIRECTIONS:
        return KNOWN_DIRECTIONS[side.metric]
    raise RBridgeError(
        f"{side.name}: the results files do not say whether higher "
        f"{side.metric!r} is better; pass --{side.name}-higher-is-better "
        "yes or no"
    )


def _per_run(rows: pd.DataFrame, tasks: list[str], side: Side) -> pd.DataFrame:
    """Collapse a task glob to one value per run: unweighted mean, stderr of independent means."""
    out = []
    for run, run_rows in rows.groupby("run", sort=False):
        have = set(run_rows["task"])
        if have != set(tasks):
            missing = sorted(set(tasks) - have)
            raise located(
                str(run_rows["source"].iloc[0]),
                f"{side.name} task glob "
                f"{side.task!r} matches {len(tasks)} tasks but this run lacks "
                f"{_preview(missing)}",
                field="results",
            )
        first = run_rows.iloc[0]
        k = len(run_rows)
        out.append(
            {
                **first.to_dict(),
                "run": run,
                "task": side.task if k > 1 else first["task"],
                "value": float(run_rows["value"].mean()),
                "stderr": float(
                    np.sqrt((run_rows["stderr"] ** 2).sum(skipna=False)) / k
                ),  # N/A stays NaN
            }
        )
    return pd.DataFrame(out)


def _deduplicate(
    table: pd.DataFrame, side: str, policy: str, duplicates: list[dict[str, Any]]
) -> pd.DataFrame:
    counts = table["key"].value_counts()
    repeated = counts[counts > 1].index.tolist()
    if not repeated:
        return table.reset_index(drop=True)
    for key in sorted(repeated):
        runs = table.loc[table["key"] == key, "run"].tolist()
        duplicates.append({"side": side, "key": key, "runs": runs})
    if policy == "error":
        first = duplicates[-len(repeated)]
        raise RBridgeError(
            f"{side}: {len(repeated)} join key(s) have several runs, e.g. {first['key']!r}: "
            f"{', '.join(first['runs'])}; remove the extra runs, narrow with --where, or "
            "average them with --on-duplicate mean"
        )
    merged = []
    for key, rows in table.groupby("key", sort=False):
        row = rows.iloc[0].to_dict()
        if len(rows) > 1:
            row["value"] = float(rows["value"].mean())
            row["stderr"] = float(np.sqrt((rows["stderr"] ** 2).sum(skipna=False)) / len(rows))
            row["run"] = " + ".join(rows["run"])
            if "z" in rows:
                row["z"] = float(rows["z"].mean())
        row["key"] = key
        merged.append(row)
    return pd.DataFrame(merged)


def _pairs(p: pd.DataFrame, t: pd.DataFrame, group_by: str | None) -> pd.DataFrame:
    pairs = pd.DataFrame(
        {
            "key": p.index,
            "x": p["value"].to_numpy(float),
            "x_stderr": p["stderr"].to_numpy(float),
            "y": t["value"].to_numpy(float),
            "y_stderr": t["stderr"].to_numpy(float),
            "proxy_run": p["run"].to_numpy(),
            "target_run": t["run"].to_numpy(),
            "proxy_source": p["source"].to_numpy(),
            "target_source": t["source"].to_numpy(),
        }
    )
    if group_by:
        pairs["group"] = p["group"].to_numpy()
    if "block" in p:
        pairs["block"] = p["block"].to_numpy()
    pairs["proxy_fields"] = p["fields"].to_numpy()
    pairs["target_fields"] = t["fields"].to_numpy()
    if "z" in t:
        pairs["z"] = t["z"].to_numpy(float)
    return pairs.reset_index(drop=True)


def natural_key(text: str) -> list[Any]:
    """Sort "step2" before "step1000", as people read checkpoint and size names."""
    return [
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", str(text))
        if part
    ]


def _split_fields(spec: str) -> list[str]:
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise RBridgeError(f"empty field list {spec!r}")
    return names


def _run_list(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"key": row["key"], "run": row["run"], "value": row["value"]} for _, row in table.iterrows()
    ]


def _preview(values: list[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)})"
