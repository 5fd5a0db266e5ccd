"""`rbridge predict compare`: every proxy metric of a ladder side by side, in the paper's Table 2.

For each benchmark (a proxy task and a target accuracy) and for EVERY `<metric>,<filter>` the proxy
task reports (plus DataDecide's metrics derived from samples files, `predictors.data.datadecide`):
- the regression (`fitting.fit.fit_pairs`, as `fit` does it): the form chosen by held-out error
  (pooled out-of-fold R2, mean over repeated shuffled 5-fold CV; `--select train_r2` is the
  paper's protocol); reported first the held-out figures (CV R2, CV MAE in target units, both
  from predictions clipped to the target's range), last the paper's train R2;
- the ranking of the joined recipes: decision accuracy and Kendall tau-b, each with a percentile
  interval from resampling recipes (`ranking.bootstrap_ranking`), in the direction the results
  files declare for the metric (`higher_is_better`); with `--within KEY`, also decision accuracy
  over the pairs within blocks of KEY only.
A metric whose chosen fit has CV R2 <= 0 predicts no better than the mean: listed in one line.
Fewer than 3 joined recipes is refused, with `fit`'s rule and wording (`require_cv_points`).
Averages over benchmarks are unweighted, over the benchmarks where the metric exists (the count is
shown). A run that lacks a metric is left out of that metric's fit only, and listed; a metric
whose fit cannot be made (too few points, no direction for ranking) is listed with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.data.ingest import KNOWN_DIRECTIONS
from predictors.data.join import Side, join, matches, natural_key, select_scores, task_matches
from predictors.data.targets import PROXY_PREFIX, TARGETS, lookup
from predictors.fitting.fit import (
    FitOptions,
    curve_grid,
    fit_pairs,
    require_cv_points,
    target_bounds,
)
from predictors.fitting.ranking import bootstrap_ranking, goodness, ranking_metrics
from predictors.reports import report
from predictors.reports.commands import within_blocks
from rbridge_tasks.core.errors import RBridgeError

QUANTITIES = (  # payload key, title, higher is better: held-out figures first
    ("test_r2", "Held-out R2 of the chosen form (pooled out-of-fold, mean over CV repeats)", True),
    ("test_mae", "Held-out MAE (pooled out-of-fold, mean over CV repeats, target units)", False),
    ("decision_accuracy", "Decision accuracy over recipe pairs", True),
    ("kendall_tau", "Kendall tau-b", True),
    ("train_r2", "Train R2 of the chosen form (the paper's criterion: in-sample)", True),
)
WITHIN_QUANTITY = ("decision_accuracy_within", "Decision accuracy within blocks", True)
SHORT_FORMS = {
    "linear": "lin",
    "quadratic": "quad",
    "exponential": "exp",
    "logarithmic": "log",
    "sigmoid": "sig",
}


@dataclass(frozen=True)
class Benchmark:
    """One `--benchmark` of `compare`: the proxy task to score and the target side to predict."""

    name: str
    proxy_task: str
    target: Side

    @classmethod
    def parse(cls, spec: str, target_where: tuple[str, ...] = ()) -> Benchmark:
        """`NAME` | `NAME=PROXY_TASK` | `NAME=PROXY_TASK:TARGET_TASK[:METRIC[:FILTER]]`.

        Missing parts come from the accuracy-targets table (`predictors.data.targets`): the proxy
        task defaults to `rbridge_NAME`, the target task, metric and filter to NAME's entry (or to
        the entry of the named target task).
        """
        name, _, rest = spec.partition("=")
        parts = rest.split(":") if rest else []
        if not name or len(parts) > 4 or any(not p for p in parts):
            raise RBridgeError(
                f"--benchmark {spec!r}: expected NAME, NAME=PROXY_TASK or "
                "NAME=PROXY_TASK:TARGET_TASK[:METRIC[:FILTER]]"
            )
        proxy_task = parts[0] if parts else f"{PROXY_PREFIX}{name}"
        entry = lookup(parts[1]) if len(parts) > 1 else lookup(name)
        if len(parts) < 3 and entry is None:
            known = ", ".join(TARGETS)
            raise RBridgeError(
                f"--benchmark {spec!r}: {name!r} is not in the accuracy-targets table ({known}); "
                "name the target as NAME=PROXY_TASK:TARGET_TASK:METRIC[:FILTER]"
            )
        task = parts[1] if len(parts) > 1 else entry.task
        metric = parts[2] if len(parts) > 2 else entry.metric
        filt = parts[3] if len(parts) > 3 else (entry.filter if len(parts) < 3 else None)
        return cls(name, proxy_task, Side("target", task, metric, filt, target_where))


def compare_payload(
    tidy: pd.DataFrame,
    benchmarks: list[Benchmark],
    *,
    proxy_where: tuple[str, ...] = (),
    on: str = "recipe",
    on_duplicate: str = "error",
    options: FitOptions | None = None,
    notes: list[str] | None = None,
    within: str | None = None,
) -> dict[str, Any]:
    """Every proxy metric of every benchmark: regression protocol and ranking, with averages."""
    options = options or FitOptions()
    if not benchmarks:
        raise RBridgeError("no benchmark to compare: pass --benchmark NAME (repeatable)")
    names = [b.name for b in benchmarks]
    if len(set(names)) != len(names):
        raise RBridgeError(f"--benchmark names repeat: {names}")
    payload: dict[str, Any] = {
        "command": "compare",
        "protocol": {
            **options.describe(),
            "ranking": f"recipe bootstrap, {options.n_boot} resamples, "
            f"{1 - options.alpha:.0%} percentile intervals",
            "within": within,
        },
        "benchmarks": [],
        "metrics": [],
        "cells": {},
        "missing": [],
        "skipped": [],
        "notes": list(notes or []),
    }
    for bench in benchmarks:
        payload["benchmarks"].append(
            _benchmark(tidy, bench, payload, proxy_where, on, on_duplicate, options, within)
        )
    payload["metrics"] = sorted({m for cells in payload["cells"].values() for m in cells})
    payload["average"] = _averages(payload)
    payload["best"] = {
        key: {
            row: _podium(_rankable(payload, key, row, values), higher)
            for row, values in _rows(payload, key).items()
        }
        for key, _, higher in _quantities(payload)
    }
    payload["no_skill"] = [
        f"{bench} `{metric}`"
        for bench, cells in payload["cells"].items()
        for metric, cell in sorted(cells.items())
        if cell["no_skill"]
    ]
    payload["within_disagrees"] = [
        f"{bench} `{metric}`"
        for bench, cells in payload["cells"].items()
        for metric, cell in sorted(cells.items())
        if cell.get("within") and cell["within"]["disagrees"]
    ]
    return payload


def _quantities(payload: dict[str, Any]) -> tuple[tuple[str, str, bool], ...]:
    within = payload["protocol"]["within"]
    if not within:
        return QUANTITIES
    key, title, higher = WITHIN_QUANTITY
    return (*QUANTITIES[:3], (key, f"{title} of `{within}`", higher), *QUANTITIES[3:])


def compare_markdown(payload: dict[str, Any]) -> str:
    """Table 2's shape per quantity: metrics as columns, benchmarks (+ Average) as rows."""
    text = "## Proxy metrics compared (`rbridge predict compare`)\n\n"
    for b in payload["benchmarks"]:
        target = b["target"]
        text += (
            f"- {b['name']}: proxy task `{b['proxy_task']}` ({b['n_proxy_runs']} runs, "
            f"{len(b['metrics'])} metrics) -> target `{target['task']}` "
            f"`{target['metric']},{target['filter']}`; joined on `{b['join_on']}`: "
            f"{_recipes(b['recipes'])}\n"
        )
    protocol = payload["protocol"]
    quadratic = "monotone over the fitted range" if protocol["monotone"] else "free"
    text += (
        f"- regression: form chosen among {', '.join(protocol['forms'])} (quadratic "
        f"{quadratic}) by {report.SELECTED_BY[protocol['select']]} under "
        f"{protocol['folds']}-fold CV repeated {protocol['repeats']} times (seeds from "
        f"{protocol['seed']}; leave-one-out, once, for a benchmark with no more recipes than "
        "folds); predictions clipped to the target's range; "
        f"ranking: {protocol['ranking']}\n"
        "- **bold** best, <u>underlined</u> second in each row; `(k/K)` in Average: the metric "
        "exists for k of K benchmarks (then not ranked against complete averages)\n"
    )
    if payload["no_skill"]:
        text += (
            "\n**No skill** (held-out R2 <= 0: predicts unseen recipes no better than their "
            f"mean): {', '.join(payload['no_skill'])}\n"
        )
    if payload["within_disagrees"]:
        text += (
            f"\n**Pooled and within-`{protocol['within']}` decision accuracy differ by "
            f"{report.DISAGREEMENT} or more** (the pooled figure mostly ranks the blocks): "
            f"{', '.join(payload['within_disagrees'])}\n"
        )
    metrics = payload["metrics"]
    for key, title, higher in _quantities(payload):
        arrow = "higher is better" if higher else "lower is better"
        text += f"\n### {title} ({arrow})\n\n"
        rows = []
        for row, values in _rows(payload, key).items():
            podium = payload["best"][key][row]
            cells = [_cell(payload, key, row, m, values.get(m), podium) for m in metrics]
            rows.append([row, *cells])
        text += _plain_table(["benchmark", *metrics], rows)
    for title, key in (("Missing values", "missing"), ("Not compared", "skipped")):
        if payload[key]:
            text += f"\n**{title}**\n\n" + "".join(f"- {m}\n" for m in payload[key])
    return text + report._footer(payload)


def compare_chart(payload: dict[str, Any], path: Path) -> Path:
    """The comparison as a chart (`plots.plot_compare`), imported only here so that a
    `compare` that draws none (no `--out-dir`, or `--no-plot`) loads no matplotlib."""
    from predictors.reports import plots

    return plots.plot_compare(path, payload)


def _benchmark(
    tidy: pd.DataFrame,
    bench: Benchmark,
    payload: dict[str, Any],
    proxy_where: tuple[str, ...],
    on: str,
    on_duplicate: str,
    options: FitOptions,
    within: str | None,
) -> dict[str, Any]:
    target = select_scores(tidy, bench.target).side  # fails early, once, on a bad target
    task_rows = tidy[[task_matches(t, bench.proxy_task) for t in tidy["task"]]]
    proxy_rows = task_rows[
        [all(matches(r, c) for c in proxy_where) for _, r in task_rows.iterrows()]
    ]
    if proxy_rows.empty:
        tasks = sorted(set(tidy["task"]))[:12]
        raise RBridgeError(
            f"benchmark {bench.name}: no proxy run with task {bench.proxy_task!r} "
            f"matching {list(proxy_where)}; tasks present: {tasks}"
        )
    runs = sorted(set(proxy_rows["run"]))
    metrics = sorted(set(zip(proxy_rows["metric"], proxy_rows["filter"], strict=True)))
    cells = payload["cells"].setdefault(bench.name, {})
    recipes: list[str] = []
    for metric, filt in metrics:
        label = metric if filt == "none" else f"{metric},{filt}"
        have = proxy_rows[
            (proxy_rows["metric"] == metric)
            & (proxy_rows["filter"] == filt)
            & (proxy_rows["problem"] == "")
        ]
        missing = sorted(set(runs) - set(have["run"]))
        if have.empty:
            payload["skipped"].append(f"{bench.name} `{label}`: no proxy run has a number")
            continue
        if missing:
            payload["missing"].append(
                f"{bench.name} `{label}`: missing or not a number on {len(missing)} of "
                f"{len(runs)} proxy runs, left out of its fit: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
        drop = task_rows["run"].isin(missing)
        subset = tidy.drop(index=task_rows.index[drop])
        direction = _direction(have, metric)
        # an unknown direction does not matter to the regression; ranking is left out below
        proxy = Side("proxy", bench.proxy_task, metric, filt, proxy_where, direction is not False)
        joined = join(subset, proxy, target, on=on, on_duplicate=on_duplicate, within=within)
        shared = joined.pairs[joined.pairs["proxy_source"] == joined.pairs["target_source"]]
        if len(shared):
            raise RBridgeError(
                f"benchmark {bench.name}: {shared['proxy_source'].iloc[0]} is both a proxy and "
                "a target run; tell them apart with --proxy-where / --target-where"
            )
        if not missing:
            try:
                require_cv_points(joined.pairs["key"].tolist())
            except RBridgeError as exc:
                raise RBridgeError(f"benchmark {bench.name}: {exc}") from None
        try:
            cell = _cell_result(joined, options)
        except RBridgeError as exc:
            payload["skipped"].append(f"{bench.name} `{label}`: {exc}")
            continue
        if direction is None:
            cell.update(decision_accuracy=None, kendall_tau=None, higher_is_better=None)
            cell.pop("within", None)
            cell.pop("decision_accuracy_within", None)
            payload["skipped"].append(
                f"{bench.name} `{label}`: ranking left out, the results files do not say "
                "whether higher is better"
            )
        cell["n_missing_runs"] = len(missing)
        cells[label] = cell
        recipes = sorted(set(recipes) | set(joined.pairs["key"]), key=natural_key)
        payload["notes"] += [n for n in joined.notes if n not in payload["notes"]]
    return {
        "name": bench.name,
        "proxy_task": bench.proxy_task,
        "target": target.describe(),
        "join_on": on,
        "n_proxy_runs": len(runs),
        "metrics": sorted(cells),
        "recipes": recipes,
    }


def _cell_result(joined: Any, options: FitOptions) -> dict[str, Any]:
    pairs = joined.pairs
    bounds = target_bounds(pairs["y"], joined.target.metric)
    outcome = fit_pairs(pairs, options, bounds)
    summary = outcome.chosen_cv.summary()
    x, y = pairs["x"].to_numpy(float), pairs["y"].to_numpy(float)
    grid = curve_grid(x, 100)
    proxy = joined.proxy
    cell: dict[str, Any] = {
        "form": outcome.form,
        "n": len(pairs),
        "test_r2": summary["r2"],
        "test_r2_sd": summary["r2_sd"],
        "test_mae": summary["mae"],
        "train_r2": summary["train_r2"],
        "full_fit_r2": outcome.train_r2,
        "no_skill": outcome.skill()["no_skill"],
        "turns_at": outcome.turns_at(),
        "bounds": bounds,
        "params": outcome.estimator.curve_params(),
        "forms": {
            name: {k: res.summary()[k] for k in ("r2", "r2_sd", "mae", "train_r2")}
            for name, res in outcome.cv.items()
        },
        "forms_skipped": outcome.skipped,
        "higher_is_better": proxy.higher_is_better,
        "points": [
            {"key": k, "x": xi, "y": yi, "cv_prediction": p}
            for k, xi, yi, p in zip(pairs["key"], x, y, outcome.chosen_cv.predictions, strict=True)
        ],
        "curve": {"x": grid, "y": outcome.curve(grid)},
    }
    hib = bool(proxy.higher_is_better)
    t_hib = bool(joined.target.higher_is_better)
    ranks = ranking_metrics(x, y, proxy_higher_is_better=hib, target_higher_is_better=t_hib)
    ranking = {
        "proxy_higher_is_better": hib,
        "target_higher_is_better": t_hib,
        "n_boot": options.n_boot,
        "alpha": options.alpha,
        "random_state": options.seed,
    }
    boot = bootstrap_ranking(x, y, **ranking)
    cell["decision_accuracy"] = {
        "value": ranks["decision_accuracy"],
        "lower": boot.lower,
        "upper": boot.upper,
        "n_pairs": ranks["n_pairs"],
    }
    cell["kendall_tau"] = {
        "value": ranks["kendall_tau_b"],
        "lower": boot.tau_lower,
        "upper": boot.tau_upper,
    }
    if "block" in pairs:
        blocks = pairs["block"].tolist()
        within_boot = bootstrap_ranking(x, y, blocks=blocks, **ranking)
        cell["within"] = within_blocks(
            joined.within,
            pairs["key"].tolist(),
            goodness(x, hib),
            goodness(y, t_hib),
            blocks,
            pooled=ranks["decision_accuracy"],
            interval=(within_boot.lower, within_boot.upper),
        )
        cell["decision_accuracy_within"] = {
            "value": cell["within"]["decision_accuracy"],
            "lower": within_boot.lower,
            "upper": within_boot.upper,
            "n_pairs": cell["within"]["n_pairs"],
        }
    return cell


def _direction(rows: pd.DataFrame, metric: str) -> bool | None:
    stated = {bool(v) for v in rows["higher_is_better"] if isinstance(v, (bool, np.bool_))}
    if len(stated) > 1:
        source = rows["source"].iloc[0]
        raise RBridgeError(
            f"{source}: results files disagree on whether higher {metric!r} is better "
            "(field higher_is_better)"
        )
    return stated.pop() if stated else KNOWN_DIRECTIONS.get(metric)


def _value(cell: dict[str, Any] | None, key: str) -> float | None:
    if cell is None:
        return None
    value = cell.get(key)
    if isinstance(value, dict):
        value = value["value"]
    return None if value is None or not np.isfinite(value) else float(value)


def _rows(payload: dict[str, Any], key: str) -> dict[str, dict[str, float | None]]:
    rows = {
        bench: {m: _value(cell, key) for m, cell in cells.items()}
        for bench, cells in payload["cells"].items()
    }
    rows["Average"] = {m: a[key]["value"] for m, a in payload.get("average", {}).items()}
    return rows


def _averages(payload: dict[str, Any]) -> dict[str, Any]:
    out = {}
    n_bench = len(payload["benchmarks"])
    for metric in payload["metrics"]:
        out[metric] = {}
        for key, _, _ in _quantities(payload):
            values = [
                v
                for cells in payload["cells"].values()
                if (v := _value(cells.get(metric), key)) is not None
            ]
            out[metric][key] = {
                "value": float(np.mean(values)) if values else None,
                "n_benchmarks": len(values),
                "of": n_bench,
            }
    return out


def _rankable(
    payload: dict[str, Any], key: str, row: str, values: dict[str, float | None]
) -> dict[str, float | None]:
    """An average over fewer benchmarks is not comparable: the Average row ranks only the metrics
    present for every benchmark (all of them when none is)."""
    if row != "Average":
        return values
    n = len(payload["benchmarks"])
    complete = {m: v for m, v in values.items() if payload["average"][m][key]["n_benchmarks"] == n}
    return complete if any(v is not None for v in complete.values()) else values


def _podium(values: dict[str, float | None], higher: bool) -> list[list[str]]:
    """The metrics sharing the best value of a row, and those sharing the second best."""
    distinct = sorted({v for v in values.values() if v is not None}, reverse=higher)
    return [sorted(m for m, v in values.items() if v == level) for level in distinct[:2]]


def _cell(
    payload: dict[str, Any],
    key: str,
    row: str,
    metric: str,
    value: float | None,
    podium: list[list[str]],
) -> str:
    if value is None:
        return "—"
    text = report.fmt(value, 3)
    if row == "Average":
        avg = payload["average"][metric][key]
        if avg["n_benchmarks"] < avg["of"]:
            text += f" ({avg['n_benchmarks']}/{avg['of']})"
    else:
        cell = payload["cells"][row][metric]
        if key in ("decision_accuracy", "kendall_tau", "decision_accuracy_within"):
            interval = cell[key]
            text += f" [{report.fmt(interval['lower'], 2)}, {report.fmt(interval['upper'], 2)}]"
        elif key == "test_r2":
            text += f" {SHORT_FORMS.get(cell['form'], cell['form'])}"
            if cell["no_skill"]:
                text += " (no skill)"
    if podium and metric in podium[0]:
        return f"**{text}**"
    if len(podium) > 1 and metric in podium[1]:
        return f"<u>{text}</u>"
    return text


def _recipes(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(map(str, keys[:limit]))
    return f"{len(keys)} recipes ({shown}{', ...' if len(keys) > limit else ''})"


def _plain_table(headers: list[str], rows: list[list[str]]) -> str:
    """Cells are formatted already (bold, intervals); only pipes in names need escaping."""
    esc = [h.replace("|", "\\|") for h in headers]
    lines = ["| " + " | ".join(esc) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
