"""Fit files: what `rbridge predict fit` saves so `leaderboard` and `gate` can reuse the fit.

The file stores the joined points and every option, not pickled objects: loading refits the
same form on the same points (deterministic) and checks that the parameters come out as saved,
so a hand-edited or version-skewed file is caught instead of silently predicting something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from predictors.fitting import FitOptions, FitOutcome, fit_pairs
from predictors.join import Side
from rbridge_tasks.errors import located
from rbridge_tasks.jsonl import read_json

FORMAT = "rbridge-fit/1"


@dataclass
class LoadedFit:
    outcome: FitOutcome
    proxy: Side
    target: Side
    path: Path


def fit_record(
    outcome: FitOutcome, proxy: Side, target: Side, pairs: pd.DataFrame
) -> dict[str, Any]:
    points = {
        "key": pairs["key"].astype(str).tolist(),
        "x": outcome.X[:, 0].tolist(),
        "y": outcome.y.tolist(),
    }
    if outcome.fit_params:
        points["z"] = outcome.fit_params["intermediate"].tolist()
    options = {**outcome.options.describe(), "form": outcome.form}
    return {
        "format": FORMAT,
        "form": outcome.form,
        "options": options,
        "proxy": proxy.describe(),
        "target": target.describe(),
        "points": points,
        "params": outcome.estimator.curve_params(),
    }


def load_fit(path: str | Path) -> LoadedFit:
    path = Path(path)
    data = read_json(path)
    record = data.get("model") if isinstance(data, dict) else None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise located(
            str(path),
            f"not a fit file (no 'model' block of format {FORMAT!r}); "
            "make one with `rbridge predict fit --out-dir`",
            field="model",
        )
    try:
        options = FitOptions.from_dict(record["options"])
        proxy = Side(name="proxy", **record["proxy"] | {"where": tuple(record["proxy"]["where"])})
        target = Side(
            name="target", **record["target"] | {"where": tuple(record["target"]["where"])}
        )
        points = record["points"]
        pairs = pd.DataFrame({"key": points["key"], "x": points["x"], "y": points["y"]})
        if "z" in points:
            pairs["z"] = points["z"]
    except (KeyError, TypeError) as exc:
        raise located(str(path), f"fit file is incomplete ({exc})", field="model") from None
    outcome = fit_pairs(pairs, options)
    _check_same(record["params"], outcome.estimator.curve_params(), path)
    return LoadedFit(outcome=outcome, proxy=proxy, target=target, path=path)


def _check_same(saved: Any, refit: Any, path: Path, where: str = "params") -> None:
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
