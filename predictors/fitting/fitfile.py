"""Fit files: what `rbridge predict fit` saves so `leaderboard` and `gate` can reuse the fit.

The file stores the joined points, every option, what the fit predicts, and its bootstrap (the
parameters of every refit and the residual draws), not pickled objects. Loading refits the chosen
form on the same points (deterministic) and checks that the parameters and the cross-validated R2
come out as saved, so a hand-edited or version-skewed file is caught instead of silently
predicting something else; the intervals are read from the stored bootstrap, so every command
shows the same interval for the same proxy score.

What a fit predicts: the target task, metric and filter, and the fields every target run of the
fit shares (`target.shared`, e.g. `size: 3B`), from the runs' metadata; `check_target` refuses
(or, when told, flags) a use for targets that do not match them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.data.join import Joined, Side, compare, parse_condition
from predictors.fitting.fit import FitOptions, FitOutcome, fit_pairs
from predictors.fitting.intervals import CurveDraws
from rbridge_tasks.core.errors import RBridgeError, located
from rbridge_tasks.core.jsonl import read_json

FORMAT = "rbridge-fit/2"


@dataclass
class LoadedFit:
    """A fit file, refitted and checked (`load_fit`): the fit, its stored bootstrap, the two
    sides it joined and the fields of every run it was fitted on."""

    outcome: FitOutcome
    draws: CurveDraws
    proxy: Side
    target: Side
    path: Path
    join_on: str
    keys: list[str]
    proxy_fields: list[dict[str, Any]]
    target_fields: list[dict[str, Any]]

    @property
    def target_shared(self) -> dict[str, Any]:
        """What every target run of the fit has in common (e.g. `size: 3B`): what it predicts."""
        return shared_fields(self.target_fields, self.join_on)

    def check_target(self, conditions: tuple[str, ...], extrapolate: bool) -> str | None:
        """None when every condition holds for every target run of the fit; otherwise refuse,
        or with `extrapolate` return the one-line flag to show."""
        for condition in conditions:
            name, op, expected = parse_condition(condition)
            values = [fields.get(name) for fields in self.target_fields]
            try:
                if all(v is not None and compare(v, op, expected) for v in values):
                    continue
            except ValueError:
                raise RBridgeError(
                    f"--target-where {condition!r}: the fit's target runs have {name} "
                    f"{sorted({str(v) for v in values})}, not numbers"
                ) from None
            seen = sorted({str(v) for v in values}, key=str)
            message = (
                f"this fit predicts {self.target.task} {self.target.metric} of targets with "
                f"{name} in {seen} ({len(values)} target runs), not {condition!r}"
            )
            if not extrapolate:
                raise RBridgeError(
                    f"{self.path}: {message}; a fit knows no scale beyond its targets: refit on "
                    "such targets, or pass --extrapolate-target to predict anyway (flagged)"
                )
            return f"target extrapolation: {message}; predictions for it are extrapolations"
        return None


def fit_record(outcome: FitOutcome, draws: CurveDraws, joined: Joined) -> dict[str, Any]:
    """The fit file's `model` block: points, options, sides, parameters, skill and bootstrap,
    plain JSON that `load_fit` can refit and check."""
    pairs = joined.pairs
    points = {
        "key": pairs["key"].astype(str).tolist(),
        "x": outcome.X[:, 0].tolist(),
        "y": outcome.y.tolist(),
        "proxy_fields": pairs["proxy_fields"].tolist(),
        "target_fields": pairs["target_fields"].tolist(),
    }
    if outcome.fit_params:
        points["z"] = outcome.fit_params["intermediate"].tolist()
    options = {**outcome.options.describe(), "form": outcome.form}
    return {
        "format": FORMAT,
        "form": outcome.form,
        "options": options,
        "join_on": joined.on,
        "proxy": {
            **joined.proxy.describe(),
            "shared": shared_fields(points["proxy_fields"], joined.on),
        },
        "target": {
            **joined.target.describe(),
            "shared": shared_fields(points["target_fields"], joined.on),
        },
        "bounds": list(outcome.bounds) if outcome.bounds else None,
        "points": points,
        "params": outcome.estimator.curve_params(),
        "skill": outcome.skill(),
        "interval": draws.record(),
    }


def shared_fields(fields: list[dict[str, Any]], join_on: str) -> dict[str, Any]:
    """The fields with one (non-empty) value across all runs of a side, join fields excluded."""
    keys = set.intersection(*(set(f) for f in fields)) if fields else set()
    keys -= {name.strip() for name in join_on.split(",")}
    return {
        k: fields[0][k]
        for k in sorted(keys)
        if fields[0][k] not in (None, "") and all(f[k] == fields[0][k] for f in fields)
    }


def load_fit(path: str | Path) -> LoadedFit:
    """Read a fit file, refit its form on its points and check the result against the file.

    Raises
    ------
    RBridgeError
        Not a fit file, a field missing or malformed, or a refit whose parameters or CV R2
        differ from those saved (a hand-edited or version-skewed file), naming the file.
    """
    path = Path(path)
    data = read_json(path)
    record = data.get("model") if isinstance(data, dict) else None
    if not isinstance(record, dict) or not str(record.get("format", "")).startswith("rbridge-fit"):
        raise located(
            str(path),
            f"not a fit file (no 'model' block of format {FORMAT!r}); "
            "make one with `rbridge predict fit --out-dir`",
            field="model",
        )
    if record["format"] != FORMAT:
        raise located(
            str(path),
            f"a fit file of format {record['format']!r}, made by another version of rbridge "
            f"(this one reads {FORMAT!r}); re-run `rbridge predict fit`",
            field="model.format",
        )
    try:
        options = FitOptions.from_dict(record["options"])
        proxy = _side("proxy", record["proxy"])
        target = _side("target", record["target"])
        points = record["points"]
        pairs = pd.DataFrame({"key": points["key"], "x": points["x"], "y": points["y"]})
        if "z" in points:
            pairs["z"] = points["z"]
        bounds = tuple(record["bounds"]) if record["bounds"] else None
        interval = record["interval"]
    except (KeyError, TypeError) as exc:
        raise located(str(path), f"fit file is incomplete ({exc})", field="model") from None
    outcome = fit_pairs(pairs, options, bounds)
    _check_same(record["params"], outcome.estimator.curve_params(), path)
    _check_same(record["skill"]["cv_r2"], outcome.skill()["cv_r2"], path, "skill.cv_r2")
    try:
        draws = CurveDraws.from_record(interval, record["params"], bounds)
    except (KeyError, TypeError, ValueError) as exc:
        raise located(str(path), f"unreadable bootstrap ({exc})", field="model.interval") from None
    return LoadedFit(
        outcome=outcome,
        draws=draws,
        proxy=proxy,
        target=target,
        path=path,
        join_on=record["join_on"],
        keys=points["key"],
        proxy_fields=points["proxy_fields"],
        target_fields=points["target_fields"],
    )


def _side(name: str, raw: dict[str, Any]) -> Side:
    return Side(
        name=name,
        task=raw["task"],
        metric=raw["metric"],
        filter=raw["filter"],
        where=tuple(raw["where"]),
        higher_is_better=raw["higher_is_better"],
    )


def _check_same(saved: Any, refit: Any, path: Path, where: str = "params") -> None:
    if saved is None and isinstance(refit, float) and not np.isfinite(refit):
        return  # JSON writes NaN as null
    if isinstance(saved, dict) and isinstance(refit, dict):
        for name in saved:
            _check_same(saved[name], refit.get(name), path, f"{where}.{name}")
    elif isinstance(saved, (int, float)) and not isinstance(saved, bool):
        if refit is None or not np.isclose(saved, refit, rtol=1e-6, atol=1e-9):
            raise located(
                str(path),
                f"refitting gives {refit!r}, the file says {saved!r}: the "
                "points or options were edited, or it was made by another version; "
                "re-run `rbridge predict fit`",
                field=f"model.{where}",
            )
    elif saved != refit:
        raise located(
            str(path), f"refitting gives {refit!r}, the file says {saved!r}", field=f"model.{where}"
        )
