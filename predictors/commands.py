"""The computations behind `rbridge predict fit|evaluate|rank|leaderboard|gate`, as payload dicts.

The CLI only parses arguments and writes files; everything reported is assembled here, so the
library user gets the same numbers as the command line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from predictors.choices import GATE_RULES
from predictors.estimators import make_form
from predictors.evaluation import (
    extrapolation_split,
    leave_one_group_out,
    too_small_groups,
    zero_shot_transfer,
)
from predictors.fitfile import LoadedFit, fit_record
from predictors.fitting import FitOptions, FitOutcome, curve_grid, fit_pairs
from predictors.join import Joined, Scores, check_item_means, field_value, item_matrix
from predictors.ranking import bootstrap_ranking, goodness, ranking_metrics
from rbridge_tasks.errors import RBridgeError


def fit_payload(joined: Joined, options: FitOptions, progress: bool = False) -> dict[str, Any]:
    """Fit, the paper's CV record, a bootstrap band along the curve and at every point."""
    outcome = fit_pairs(joined.pairs, options)
    x = outcome.X[:, 0]
    grid = curve_grid(x)
    boot = outcome.bootstrap(np.concatenate([grid, x]), progress=progress)
    lower, upper = boot.interval(options.interval)
    cv = outcome.chosen_cv
    fitted = outcome.estimator.predict(outcome.X)
    points = []
    for i, row in joined.pairs.iterrows():
        points.append(
            {
                "key": row["key"],
                "group": row.get("group"),
                "x": row["x"],
                "x_stderr": row["x_stderr"],
                "y": row["y"],
                "y_stderr": row["y_stderr"],
                "fitted": fitted[i],
                "cv_prediction": cv.predictions[i] if cv else None,
                "lower": lower[len(grid) + i],
                "upper": upper[len(grid) + i],
                "proxy_run": row["proxy_run"],
                "target_run": row["target_run"],
            }
        )
    return {
        "command": "fit",
        "join": joined.report(),
        "form": outcome.form,
        "params": outcome.estimator.curve_params(),
        "train_r2": outcome.train_r2,
        "protocol": _protocol(outcome),
        "interval": {
            "kind": options.interval,
            "alpha": options.alpha,
            "n_boot": options.n_boot,
            "n_failed": boot.n_failed,
            "method": "pairs bootstrap, percentile",
        },
        "points": points,
        "curve": {
            "x": grid,
            "y": outcome.estimator.predict(grid.reshape(-1, 1)),
            "lower": lower[: len(grid)],
            "upper": upper[: len(grid)],
        },
        "notes": joined.notes + outcome.notes + _skipped(outcome),
        "model": fit_record(outcome, joined.proxy, joined.target, joined.pairs),
    }


def evaluate_payload(
    joined: Joined, options: FitOptions, extrapolate_fraction: float
) -> dict[str, Any]:
    """Every candidate form under k-fold; the chosen one also by group, extrapolation, transfer."""
    outcome = fit_pairs(joined.pairs, options)
    protocol = _protocol(outcome)
    pairs = joined.pairs
    estimator = make_form(outcome.form, chance=options.chance, ceiling=options.ceiling)
    fit_params = outcome.fit_params or None
    cv = outcome.chosen_cv
    payload: dict[str, Any] = {
        "command": "evaluate",
        "join": joined.report(),
        "chosen": outcome.form,
        "protocol": protocol,
        "forms": protocol["forms"],
        "params": outcome.estimator.curve_params(),
        "train_r2": outcome.train_r2,
        "cv_points": [
            {"key": k, "x": x, "y": y, "cv_prediction": p, "fold": f}
            for k, x, y, p, f in zip(
                pairs["key"], pairs["x"], pairs["y"], cv.predictions, cv.fold, strict=True
            )
        ]
        if cv
        else [],
        "notes": joined.notes + outcome.notes + _skipped(outcome),
    }
    if len(pairs) >= 3:
        payload["extrapolation"] = extrapolation_split(
            estimator,
            outcome.X,
            outcome.y,
            proxy_higher_is_better=bool(joined.proxy.higher_is_better),
            fraction=extrapolate_fraction,
            fit_params=fit_params,
        )
        payload["extrapolation"]["test_keys"] = [
            pairs["key"].iloc[i] for i in payload["extrapolation"]["test_index"]
        ]
    if "group" in pairs:
        groups = pairs["group"].to_numpy()
        # a group the form cannot be fitted on alone is left out of the group protocols, by name,
        # so one small family does not cost the other results
        skipped = too_small_groups(estimator, outcome.X, outcome.y, groups, fit_params)
        payload["skipped_groups"] = skipped
        payload["notes"] += [
            f"group {s['group']!r} ({s['n']} point(s)) skipped from leave-one-group-out and "
            f"transfer: {s['reason']}"
            for s in skipped
        ]
        keep = ~np.isin(groups, [s["group"] for s in skipped])
        if len(set(groups[keep].tolist())) >= 2:
            X, y = outcome.X[keep], outcome.y[keep]
            params = {k: v[keep] for k, v in fit_params.items()} if fit_params else None
            logo = leave_one_group_out(estimator, X, y, groups[keep], params)
            payload["leave_one_group_out"] = {k: v for k, v in logo.items() if k != "predictions"}
            payload["transfer"] = zero_shot_transfer(estimator, X, y, groups[keep], params)
        else:
            payload["notes"].append("fewer than 2 groups left: no group protocols")
    return payload


def rank_payload(
    joined: Joined, *, mode: str, n_boot: int, alpha: float, seed: int, progress: bool = False
) -> dict[str, Any]:
    """Decision accuracy with its bootstrap interval, rank correlations, every pair."""
    pairs = joined.pairs
    if len(pairs) < 2:
        raise RBridgeError(f"ranking needs at least 2 joined recipes, got {len(pairs)}")
    p_hib, t_hib = bool(joined.proxy.higher_is_better), bool(joined.target.higher_is_better)
    proxy_items = target_items = None
    if mode == "items":
        if joined.duplicates:
            raise RBridgeError(
                "the item bootstrap cannot use averaged duplicate runs; "
                "use --on-duplicate error or the 'recipes' bootstrap"
            )
        sources = pairs["proxy_source"].tolist()
        proxy_items = item_matrix(sources, joined.proxy, joined.tasks["proxy"])
        check_item_means(proxy_items, pairs["x"], sources, joined.proxy)
        try:
            target_sources = pairs["target_source"].tolist()
            target_items = item_matrix(target_sources, joined.target, joined.tasks["target"])
            check_item_means(target_items, pairs["y"], target_sources, joined.target)
        except RBridgeError as exc:
            joined.notes.append(f"target accuracies held fixed in the item bootstrap ({exc})")
            target_items = None
    metrics = ranking_metrics(
        pairs["x"], pairs["y"], proxy_higher_is_better=p_hib, target_higher_is_better=t_hib
    )
    boot = bootstrap_ranking(
        pairs["x"],
        pairs["y"],
        proxy_higher_is_better=p_hib,
        target_higher_is_better=t_hib,
        mode=mode,
        proxy_items=proxy_items,
        target_items=target_items,
        proxy_stderr=pairs["x_stderr"],
        n_boot=n_boot,
        alpha=alpha,
        random_state=seed,
        progress=progress,
    )
    gp, gt = goodness(pairs["x"], p_hib), goodness(pairs["y"], t_hib)
    keys = pairs["key"].tolist()
    rows = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            proxy_pick = _winner(keys[i], keys[j], gp[i] - gp[j])
            target_pick = _winner(keys[i], keys[j], gt[i] - gt[j])
            rows.append(
                {
                    "a": keys[i],
                    "b": keys[j],
                    "proxy_prefers": proxy_pick,
                    "target_prefers": target_pick,
                    "agree": None if target_pick == "tie" else proxy_pick == target_pick,
                    "p_a_beats_b": boot.win_probability[i, j],
                }
            )
    order = np.argsort(-gp, kind="stable")
    target_rank = _ranks(gt)
    return {
        "command": "rank",
        "join": joined.report(),
        **metrics,
        "interval": {
            "lower": boot.lower,
            "upper": boot.upper,
            "alpha": alpha,
            "mode": mode,
            "n_boot": n_boot,
            "win_probability": "paired item bootstrap"
            if mode == "items"
            else "normal approximation from lm-eval stderr",
        },
        "recipes": [
            {
                "key": keys[i],
                "x": pairs["x"].iloc[i],
                "y": pairs["y"].iloc[i],
                "proxy_rank": r + 1,
                "target_rank": int(target_rank[i]),
            }
            for r, i in enumerate(order)
        ],
        "pairs": rows,
        "notes": joined.notes,
    }


def leaderboard_payload(
    fit: LoadedFit, candidates: Scores, *, label_by: str, progress: bool = False
) -> dict[str, Any]:
    """Predicted target accuracy with intervals for every candidate run, best first."""
    table = candidates.table.copy()
    table["label"] = [_label(row, label_by) for _, row in table.iterrows()]
    repeated = table["label"][table["label"].duplicated()].tolist()
    if repeated:
        runs = table.loc[table["label"] == repeated[0], "run"].tolist()
        raise RBridgeError(
            f"several candidate runs share the label {repeated[0]!r} "
            f"({', '.join(runs)}); choose fields that tell them apart with "
            "--label-by, or narrow with --where"
        )
    outcome = fit.outcome
    predicted = _predict(outcome, table["value"].to_numpy(float))
    boot = outcome.bootstrap(table["value"].to_numpy(float), progress=progress)
    lower, upper = boot.interval(outcome.options.interval)
    low, high = outcome.estimator.x_range_
    t_hib = bool(fit.target.higher_is_better)
    order = np.argsort(-goodness(predicted, t_hib), kind="stable")
    entries = []
    for rank, i in enumerate(order, start=1):
        x = float(table["value"].iloc[i])
        entries.append(
            {
                "rank": rank,
                "label": table["label"].iloc[i],
                "run": table["run"].iloc[i],
                "x": x,
                "x_stderr": table["stderr"].iloc[i],
                "predicted": predicted[i],
                "lower": lower[i],
                "upper": upper[i],
                "extrapolated": bool(x < low or x > high),
            }
        )
    return {
        "command": "leaderboard",
        "fit": str(fit.path),
        "form": outcome.form,
        "proxy": fit.proxy.describe(),
        "target": fit.target.describe(),
        "fitted_proxy_range": [low, high],
        "fitted_target_range": [float(outcome.y.min()), float(outcome.y.max())],
        "interval": {
            "kind": outcome.options.interval,
            "alpha": outcome.options.alpha,
            "n_boot": outcome.options.n_boot,
            "n_failed": boot.n_failed,
        },
        "entries": entries,
    }


def gate_payload(
    fit: LoadedFit,
    baseline: Scores,
    candidate: Scores,
    *,
    tolerance: float,
    rule: str = GATE_RULES[0],
    score_noise: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Is the candidate predicted worse than the baseline by more than `tolerance`, surely?

    Rules (both from one bootstrap, gains oriented so that positive = candidate better):
    - "difference" (default): fail when the whole interval of the predicted gain (shared refits,
      so the fit's uncertainty largely cancels) lies below -tolerance; what eval CI means by
      "worse";
    - "candidate-interval": fail only when the baseline's prediction lies beyond the candidate's
      own interval (which holds the whole fit's uncertainty) by more than `tolerance`; lenient.
    With `score_noise`, each proxy score is also perturbed by its lm-eval stderr; a score without
    one (lm-eval writes "N/A") is an error rather than silently noiseless.
    """
    if rule not in GATE_RULES:
        raise RBridgeError(f"gate rule must be one of {GATE_RULES}, got {rule!r}")
    rows = []
    for name, scores in (("baseline", baseline), ("candidate", candidate)):
        if len(scores.table) != 1:
            runs = ", ".join(scores.table["run"].tolist())
            raise RBridgeError(
                f"the {name} must be one run, found {len(scores.table)}: {runs}; "
                "pass one results file or narrow with --where"
            )
        row = scores.table.iloc[0]
        if score_noise and not np.isfinite(pd.to_numeric(row["stderr"], errors="coerce")):
            raise RBridgeError(
                f"{row['source']}: the {name}'s proxy score has no stderr (lm-eval writes "
                '"N/A", e.g. with --bootstrap_iters 0), so its noise is unknown, not zero; '
                "rerun lm-eval with stderrs, or pass --no-score-noise to gate on the fit's "
                "uncertainty alone"
            )
        rows.append(row)
    outcome = fit.outcome
    options = outcome.options
    x = np.array([rows[0]["value"], rows[1]["value"]], dtype=float)
    stderr = np.array([rows[0]["stderr"], rows[1]["stderr"]], dtype=float) if score_noise else None
    boot = outcome.bootstrap(x, x_new_stderr=stderr, progress=progress)
    predicted = _predict(outcome, x)
    lower, upper = boot.interval(options.interval)
    sign = 1.0 if fit.target.higher_is_better else -1.0
    gain = sign * (boot.draws("confidence")[:, 1] - boot.draws("confidence")[:, 0])
    gain_low, gain_high = np.quantile(gain, [options.alpha / 2, 1 - options.alpha / 2])
    estimate = sign * (predicted[1] - predicted[0])
    # The candidate's most favourable end, oriented: upper for accuracy, lower for a loss.
    best_case = upper[1] if sign > 0 else lower[1]
    shortfall = sign * (predicted[0] - best_case)
    failed = shortfall > tolerance if rule == "candidate-interval" else gain_high < -tolerance
    level = f"{1 - options.alpha:.0%}"
    if rule == "candidate-interval":
        reason = (
            f"baseline predicted {predicted[0]:.4g}, candidate {predicted[1]:.4g} with "
            f"{level} {options.interval} interval [{lower[1]:.4g}, {upper[1]:.4g}]: the "
            f"baseline is {'beyond' if shortfall > 0 else 'within'} the candidate's "
            f"interval (by {shortfall:.4g}; tolerance {tolerance:.4g})"
        )
    else:
        reason = (
            f"predicted gain of the candidate {estimate:.4g}, {level} interval "
            f"[{gain_low:.4g}, {gain_high:.4g}] "
            f"{'entirely below' if failed else 'not entirely below'} -{tolerance:.4g}"
        )
    out = {
        "command": "gate",
        "fit": str(fit.path),
        "form": outcome.form,
        "rule": rule,
        "proxy": fit.proxy.describe(),
        "target": fit.target.describe(),
        "tolerance": tolerance,
        "passed": not failed,
        "reason": ("FAIL: " if failed else "PASS: ") + reason,
        "difference": {
            "estimate": estimate,
            "lower": gain_low,
            "upper": gain_high,
            "alpha": options.alpha,
            "oriented": "positive means the candidate is predicted better",
        },
        "interval": {
            "kind": options.interval,
            "alpha": options.alpha,
            "n_boot": options.n_boot,
            "n_failed": boot.n_failed,
            "score_noise": score_noise,
        },
    }
    for k, (name, row) in enumerate(zip(("baseline", "candidate"), rows, strict=True)):
        out[name] = {
            "label": _label(row, "model,revision"),
            "run": row["run"],
            "x": row["value"],
            "x_stderr": row["stderr"],
            "predicted": predicted[k],
            "lower": lower[k],
            "upper": upper[k],
        }
    return out


def _predict(outcome: FitOutcome, x: np.ndarray) -> np.ndarray:
    return outcome.estimator.predict(np.asarray(x, dtype=float).reshape(-1, 1))


def _protocol(outcome: FitOutcome) -> dict[str, Any]:
    forms = {}
    for name, result in outcome.cv.items():
        s = result.summary()
        forms[name] = {k: s[k] for k in ("train_r2", "r2", "r2_fold_mean", "mae", "n_folds")}
    return {
        "select_by": outcome.options.select_by if outcome.options.form == "auto" else "fixed",
        "folds": outcome.options.folds,
        "seed": outcome.options.seed,
        "forms": forms,
        "skipped": outcome.skipped,
    }


def _skipped(outcome: FitOutcome) -> list[str]:
    return [f"form {name} skipped: {why}" for name, why in outcome.skipped.items()]


def _winner(a: str, b: str, diff: float) -> str:
    return a if diff > 0 else b if diff < 0 else "tie"


def _ranks(values: np.ndarray) -> np.ndarray:
    """Competition ranks, 1 = best; ties share the better rank."""
    values = np.asarray(values, dtype=float)
    return np.array([1 + int(np.sum(values > v)) for v in values])


def _label(row: pd.Series, fields: str) -> str:
    """Display name of a run: the named fields that it has, joined by '@' (an imported table
    row has no revision, an lm-eval run of a local model may have no recipe)."""
    parts = [
        str(v)
        for v in (field_value(row, f.strip()) for f in fields.split(","))
        if v not in (None, "")
    ]
    if not parts:
        raise RBridgeError(f"run {row['run']} has none of the label fields {fields!r}")
    return "@".join(parts)
