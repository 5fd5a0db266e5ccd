"""The computations behind `rbridge predict fit|evaluate|rank|leaderboard|gate`, as payload dicts.

The CLI only parses arguments and writes files; everything reported is assembled here, so the
library user gets the same numbers as the command line. What must not be taken at face value (no
skill out of sample, failed bootstrap refits, a curve that turns, a target beyond the fit's, a
noisy score reaching outside the fitted range, decisions that differ within blocks) is raised as
a `FitWarning`: the CLI prints each in one line and lists it in the JSON and the Markdown.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from predictors.choices import GATE_RULES
from predictors.data.join import Joined, Scores, check_item_means, field_value, item_matrix
from predictors.fitting.estimators import FitWarning, make_form
from predictors.fitting.evaluation import (
    extrapolation_split,
    leave_one_group_out,
    too_small_groups,
    zero_shot_transfer,
)
from predictors.fitting.fit import FitOptions, FitOutcome, curve_grid, fit_pairs, target_bounds
from predictors.fitting.fitfile import LoadedFit, fit_record
from predictors.fitting.intervals import CurveDraws, quantiles
from predictors.fitting.ranking import (
    DISAGREEMENT,
    bootstrap_ranking,
    decision_accuracy,
    goodness,
    pair_indices,
    ranking_metrics,
)
from rbridge_tasks.core.errors import RBridgeError

# A run whose score, moved by its own lm-eval stderr, leaves the fitted proxy range in more than
# this share of the bootstrap draws is flagged as extrapolated.
NOISE_OUTSIDE_SHARE = 0.05


def fit_joined(joined: Joined, options: FitOptions) -> FitOutcome:
    """`fit_pairs` with the target's range taken from the joined target (accuracy: [0, 1])."""
    bounds = target_bounds(joined.pairs["y"], joined.target.metric)
    return fit_pairs(joined.pairs, options, bounds)


def fit_payload(joined: Joined, options: FitOptions, progress: bool = False) -> dict[str, Any]:
    """Fit, its repeated-CV record, the stored bootstrap, intervals along the curve and at every
    point (read from that bootstrap, as `leaderboard` and `gate` read them)."""
    outcome = fit_joined(joined, options)
    draws = outcome.bootstrap(progress=progress)
    x = outcome.X[:, 0]
    grid = curve_grid(x)
    lower, upper = draws.interval(x)
    band = draws.interval(grid)
    cv = outcome.chosen_cv
    fitted = outcome.predict(x)
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
                "cv_prediction": cv.predictions[i],
                "lower": lower[i],
                "upper": upper[i],
                "proxy_run": row["proxy_run"],
                "target_run": row["target_run"],
            }
        )
    record = fit_record(outcome, draws, joined)
    payload = {
        "command": "fit",
        "join": joined.report(),
        "form": outcome.form,
        "params": outcome.estimator.curve_params(),
        "train_r2": outcome.train_r2,
        "skill": outcome.skill(),
        "turns_at": outcome.turns_at(),
        "bounds": outcome.bounds,
        "protocol": _protocol(outcome),
        "interval": draws.describe(),
        "predicts": _predicts(record["target"]),
        "points": points,
        "curve": {"x": grid, "y": outcome.curve(grid), "lower": band[0], "upper": band[1]},
        "notes": joined.notes + outcome.notes + _skipped(outcome),
        "model": record,
    }
    _warn_about_fit(outcome, draws)
    return payload


def evaluate_payload(
    joined: Joined, options: FitOptions, extrapolate_fraction: float
) -> dict[str, Any]:
    """Every candidate form under repeated k-fold; the chosen one also by group, extrapolation
    and transfer (held-out predictions clipped to the target's range throughout)."""
    outcome = fit_joined(joined, options)
    protocol = _protocol(outcome)
    pairs = joined.pairs
    estimator = make_form(
        outcome.form, chance=options.chance, ceiling=options.ceiling, monotone=options.monotone
    )
    fit_params = outcome.fit_params or None
    cv = outcome.chosen_cv
    bounds = outcome.bounds
    payload: dict[str, Any] = {
        "command": "evaluate",
        "join": joined.report(),
        "chosen": outcome.form,
        "protocol": protocol,
        "forms": protocol["forms"],
        "params": outcome.estimator.curve_params(),
        "train_r2": outcome.train_r2,
        "skill": outcome.skill(),
        "turns_at": outcome.turns_at(),
        "cv_points": [
            {"key": k, "x": x, "y": y, "cv_prediction": p, "fold": f}
            for k, x, y, p, f in zip(
                pairs["key"], pairs["x"], pairs["y"], cv.predictions, cv.fold, strict=True
            )
        ],
        "notes": joined.notes + outcome.notes + _skipped(outcome),
    }
    payload["extrapolation"] = extrapolation_split(
        estimator,
        outcome.X,
        outcome.y,
        proxy_higher_is_better=bool(joined.proxy.higher_is_better),
        fraction=extrapolate_fraction,
        fit_params=fit_params,
        bounds=bounds,
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
            logo = leave_one_group_out(estimator, X, y, groups[keep], params, bounds=bounds)
            payload["leave_one_group_out"] = {k: v for k, v in logo.items() if k != "predictions"}
            payload["transfer"] = zero_shot_transfer(
                estimator, X, y, groups[keep], params, bounds=bounds
            )
        else:
            payload["notes"].append("fewer than 2 groups left: no group protocols")
    _warn_about_fit(outcome, None)
    return payload


def rank_payload(
    joined: Joined, *, mode: str, n_boot: int, alpha: float, seed: int, progress: bool = False
) -> dict[str, Any]:
    """Decision accuracy with its bootstrap interval, rank correlations, every pair; with
    `--within` (blocks in `joined.pairs["block"]`) also decision accuracy within the blocks.

    `mode` is the bootstrap (`ranking` module docstring); `items` falls back to fixed target
    accuracies, with a note, when the targets have no per-item scores.

    Raises
    ------
    RBridgeError
        Fewer than 2 joined recipes; for `items`, averaged duplicate runs or proxy runs without
        per-item scores whose mean is the reported score.
    """
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
    boot_options = {
        "proxy_higher_is_better": p_hib,
        "target_higher_is_better": t_hib,
        "mode": mode,
        "proxy_items": proxy_items,
        "target_items": target_items,
        "proxy_stderr": pairs["x_stderr"],
        "n_boot": n_boot,
        "alpha": alpha,
        "random_state": seed,
        "progress": progress,
    }
    boot = bootstrap_ranking(pairs["x"], pairs["y"], **boot_options)
    gp, gt = goodness(pairs["x"], p_hib), goodness(pairs["y"], t_hib)
    keys = pairs["key"].tolist()
    blocks = pairs["block"].tolist() if "block" in pairs else None
    rows = []
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            proxy_pick = _winner(keys[i], keys[j], gp[i] - gp[j])
            target_pick = _winner(keys[i], keys[j], gt[i] - gt[j])
            row = {
                "a": keys[i],
                "b": keys[j],
                "proxy_prefers": proxy_pick,
                "target_prefers": target_pick,
                "agree": None if target_pick == "tie" else proxy_pick == target_pick,
                "p_a_beats_b": boot.win_probability[i, j],
            }
            if blocks is not None:
                row["block"] = blocks[i] if blocks[i] == blocks[j] else None
            rows.append(row)
    order = np.argsort(-gp, kind="stable")
    target_rank = _ranks(gt)
    payload = {
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
                **({"block": blocks[i]} if blocks is not None else {}),
            }
            for r, i in enumerate(order)
        ],
        "pairs": rows,
        "notes": joined.notes,
    }
    if blocks is not None:
        within_boot = bootstrap_ranking(pairs["x"], pairs["y"], blocks=blocks, **boot_options)
        payload["within"] = within_blocks(
            joined.within or "block",
            keys,
            gp,
            gt,
            blocks,
            pooled=metrics["decision_accuracy"],
            interval=(within_boot.lower, within_boot.upper),
        )
        warn_if_disagreeing(payload["within"])
    return payload


def within_blocks(
    key: str,
    keys: list[Any],
    proxy_goodness: np.ndarray,
    target_goodness: np.ndarray,
    blocks: list[Any],
    *,
    pooled: float,
    interval: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Decision accuracy over the pairs inside each block, per block and together, the pairs
    counted, and a warning when it differs from the pooled figure by DISAGREEMENT or more."""
    da = decision_accuracy(
        proxy_goodness,
        target_goodness,
        proxy_higher_is_better=True,
        target_higher_is_better=True,
        blocks=blocks,
    )
    i, j = pair_indices(len(keys), blocks)
    per_block = []
    for name in dict.fromkeys(blocks):
        members = [k for k, b in enumerate(blocks) if b == name]
        block_da = decision_accuracy(
            proxy_goodness[members],
            target_goodness[members],
            proxy_higher_is_better=True,
            target_higher_is_better=True,
        )
        per_block.append(
            {
                "block": name,
                "recipes": [keys[k] for k in members],
                "n_pairs": block_da.n_pairs,
                "n_target_ties": block_da.n_target_ties,
                "decision_accuracy": block_da.accuracy,
            }
        )
    n = len(keys)
    out = {
        "key": key,
        "decision_accuracy": da.accuracy,
        "n_pairs": da.n_pairs,
        "n_target_ties": da.n_target_ties,
        "n_proxy_ties": da.n_proxy_ties,
        "n_cross_block_pairs": n * (n - 1) // 2 - len(i),
        "pairs_counted": [[keys[a], keys[b]] for a, b in zip(i, j, strict=True)],
        "blocks": per_block,
        "pooled_decision_accuracy": pooled,
        "disagrees": bool(
            math.isfinite(pooled)
            and math.isfinite(da.accuracy)
            and abs(pooled - da.accuracy) >= DISAGREEMENT
        ),
    }
    if interval is not None:
        out["lower"], out["upper"] = interval
    return out


def warn_if_disagreeing(within: dict[str, Any], where: str = "") -> None:
    """A `FitWarning` when pooled and within-block decision accuracy differ by more than
    `DISAGREEMENT`: then the pooled figure ranks compute budgets, not data choices. `where`
    prefixes the message (e.g. the benchmark in `compare`)."""
    if within["disagrees"]:
        warnings.warn(
            f"{where}decision accuracy is {within['pooled_decision_accuracy']:.3f} over all "
            f"pairs but {within['decision_accuracy']:.3f} over the {within['n_pairs']} pairs "
            f"within one {within['key']}: the pooled figure mostly ranks the {within['key']} "
            "blocks, not the choice inside one",
            FitWarning,
            stacklevel=2,
        )


def leaderboard_payload(
    fit: LoadedFit,
    candidates: Scores,
    *,
    label_by: str,
    target_where: tuple[str, ...] = (),
    extrapolate_target: bool = False,
) -> dict[str, Any]:
    """Predicted target accuracy with the fit's stored intervals for every candidate run.

    Raises
    ------
    RBridgeError
        Two candidates with the same `label_by` label, or targets outside the fit's (see
        `LoadedFit.check_target`) without `extrapolate_target`.
    """
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
    target_flag = fit.check_target(target_where, extrapolate_target)
    outcome = fit.outcome
    x = table["value"].to_numpy(float)
    predicted = outcome.predict(x)
    lower, upper = fit.draws.interval(x)
    low, high = outcome.estimator.x_range_
    shares = _noise_outside(fit.draws, x, table["stderr"].to_numpy(float), (low, high))
    t_hib = bool(fit.target.higher_is_better)
    order = np.argsort(-goodness(predicted, t_hib), kind="stable")
    entries = []
    for rank, i in enumerate(order, start=1):
        outside = bool(x[i] < low or x[i] > high)
        entries.append(
            {
                "rank": rank,
                "label": table["label"].iloc[i],
                "run": table["run"].iloc[i],
                "x": x[i],
                "x_stderr": table["stderr"].iloc[i],
                "predicted": predicted[i],
                "lower": lower[i],
                "upper": upper[i],
                "noise_outside_share": shares[i],
                "extrapolated": outside
                or bool(shares[i] is not None and shares[i] > NOISE_OUTSIDE_SHARE)
                or target_flag is not None,
            }
        )
    _warn_noise_outside(
        [(e["label"], e["noise_outside_share"], e["x"]) for e in entries], (low, high)
    )
    payload = {
        "command": "leaderboard",
        "fit": str(fit.path),
        "form": outcome.form,
        "proxy": fit.proxy.describe(),
        "target": fit.target.describe(),
        "predicts": _predicts({**fit.target.describe(), "shared": fit.target_shared}),
        "skill": outcome.skill(),
        "target_extrapolation": target_flag,
        "fitted_proxy_range": [low, high],
        "fitted_target_range": [float(outcome.y.min()), float(outcome.y.max())],
        "interval": fit.draws.describe(),
        "entries": entries,
    }
    _warn_about_fit(outcome, fit.draws, target_flag)
    return payload


def gate_payload(
    fit: LoadedFit,
    baseline: Scores,
    candidate: Scores,
    *,
    tolerance: float,
    rule: str = GATE_RULES[0],
    score_noise: bool = True,
    within: str | None = None,
    allow_no_skill: bool = False,
    target_where: tuple[str, ...] = (),
    extrapolate_target: bool = False,
) -> dict[str, Any]:
    """Is the candidate predicted worse than the baseline by more than `tolerance`, surely?

    Rules (both from the fit's stored bootstrap, gains oriented so that positive = candidate
    better):
    - "difference" (default): fail when the whole interval of the predicted gain lies below
      -tolerance. Each draw of the gain is the difference of two draws of an accuracy, each
      clipped to the target's range: one refit's curve at both scores (so the curve's own
      uncertainty largely cancels) plus an independent held-out residual for each run (two
      recipes each scatter around the curve, which does not cancel);
    - "candidate-interval": fail only when the baseline's prediction lies beyond the candidate's
      own interval by more than `tolerance`; lenient.
    With `score_noise`, each proxy score is also moved by its lm-eval stderr in every draw; a
    score without one (lm-eval writes "N/A") is an error rather than silently noiseless.
    A fit with no skill out of sample is refused unless `allow_no_skill`; with `within`, the
    two runs must share that field's value, and the fit's ladder shows its decision accuracy
    within blocks of it.

    Raises
    ------
    RBridgeError
        An unknown rule, a negative or non-finite tolerance, a fit without skill, a side that is
        not exactly one run, a missing stderr under `score_noise`, or targets outside the fit's.
    """
    if rule not in GATE_RULES:
        raise RBridgeError(f"gate rule must be one of {GATE_RULES}, got {rule!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise RBridgeError(
            f"--tolerance must be a finite number >= 0 (the accepted drop in predicted "
            f"accuracy), got {tolerance!r}"
        )
    outcome = fit.outcome
    skill = outcome.skill()
    if skill["no_skill"] and not allow_no_skill:
        raise RBridgeError(
            f"{fit.path}: {skill['message']}; gate will not decide on it "
            "(pass --allow-no-skill to gate anyway)"
        )
    target_flag = fit.check_target(target_where, extrapolate_target)
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
    ladder = _ladder_decisions(fit, rows, within) if within else None
    draws = fit.draws
    x = np.array([rows[0]["value"], rows[1]["value"]], dtype=float)
    stderr = np.array([rows[0]["stderr"], rows[1]["stderr"]], dtype=float)
    predicted = outcome.predict(x)
    lower, upper = draws.interval(x)
    moved = draws.perturbed(x, stderr, [0, 1]) if score_noise else np.tile(x, (draws.n_ok, 1))
    both = draws.values(moved, residual=[0, 1])
    sign = 1.0 if fit.target.higher_is_better else -1.0
    gain = sign * (both[:, 1] - both[:, 0])
    gain_low, gain_high = (float(v) for v in quantiles(gain, draws.alpha))
    estimate = sign * (predicted[1] - predicted[0])
    # The candidate's most favourable end, oriented: upper for accuracy, lower for a loss.
    best_case = upper[1] if sign > 0 else lower[1]
    shortfall = sign * (predicted[0] - best_case)
    failed = shortfall > tolerance if rule == "candidate-interval" else gain_high < -tolerance
    level = f"{1 - draws.alpha:.0%}"
    if rule == "candidate-interval":
        reason = (
            f"baseline predicted {predicted[0]:.4g}, candidate {predicted[1]:.4g} with "
            f"{level} {draws.kind} interval [{lower[1]:.4g}, {upper[1]:.4g}]: the "
            f"baseline is {'beyond' if shortfall > 0 else 'within'} the candidate's "
            f"interval (by {shortfall:.4g}; tolerance {tolerance:.4g})"
        )
    else:
        reason = (
            f"predicted gain of the candidate {estimate:.4g}, {level} interval "
            f"[{gain_low:.4g}, {gain_high:.4g}] "
            f"{'entirely below' if failed else 'not entirely below'} {0.0 - tolerance:.4g}"
        )
    low, high = outcome.estimator.x_range_
    shares = _noise_outside(draws, x, stderr, (low, high))
    out = {
        "command": "gate",
        "fit": str(fit.path),
        "form": outcome.form,
        "rule": rule,
        "proxy": fit.proxy.describe(),
        "target": fit.target.describe(),
        "predicts": _predicts({**fit.target.describe(), "shared": fit.target_shared}),
        "skill": skill,
        "target_extrapolation": target_flag,
        "tolerance": tolerance,
        "passed": not failed,
        "reason": ("FAIL: " if failed else "PASS: ") + reason,
        "difference": {
            "estimate": estimate,
            "lower": gain_low,
            "upper": gain_high,
            "alpha": draws.alpha,
            "oriented": "positive means the candidate is predicted better",
            "score_noise": score_noise,
        },
        "fitted_proxy_range": [low, high],
        "interval": draws.describe(),
    }
    if ladder is not None:
        out["within"] = ladder
    for k, (name, row) in enumerate(zip(("baseline", "candidate"), rows, strict=True)):
        out[name] = {
            "label": _label(row, "model,revision"),
            "run": row["run"],
            "x": row["value"],
            "x_stderr": row["stderr"],
            "predicted": predicted[k],
            "lower": lower[k],
            "upper": upper[k],
            "noise_outside_share": shares[k],
            "extrapolated": bool(x[k] < low or x[k] > high)
            or bool(shares[k] is not None and shares[k] > NOISE_OUTSIDE_SHARE)
            or target_flag is not None,
        }
    _warn_noise_outside(
        [
            (name, out[name]["noise_outside_share"], out[name]["x"])
            for name in ("baseline", "candidate")
        ],
        (low, high),
    )
    _warn_about_fit(outcome, draws, target_flag)
    return out


def _ladder_decisions(fit: LoadedFit, rows: list[pd.Series], key: str) -> dict[str, Any]:
    """`gate --within KEY`: both runs in one block, and how the fit's own ladder decides
    within blocks of KEY (pooled vs within, from its points)."""
    values = []
    for name, row in zip(("baseline", "candidate"), rows, strict=True):
        value = field_value(row, key)
        if value is None:
            raise RBridgeError(f"{row['source']}: the {name} run has no field {key!r} (--within)")
        values.append(value)
    if values[0] != values[1]:
        raise RBridgeError(
            f"--within {key}: the baseline has {key}={values[0]!r}, the candidate "
            f"{key}={values[1]!r}; a decision within {key} compares runs of the same {key}"
        )
    blocks = []
    for point_key, fields in zip(fit.keys, fit.proxy_fields, strict=True):
        if key not in fields:
            raise RBridgeError(
                f"{fit.path}: the fit's proxy run of {point_key!r} has no field {key!r}, so its "
                "ladder cannot be scored within blocks of it"
            )
        blocks.append(fields[key])
    outcome = fit.outcome
    gp = goodness(outcome.X[:, 0], bool(fit.proxy.higher_is_better))
    gt = goodness(outcome.y, bool(fit.target.higher_is_better))
    pooled = decision_accuracy(gp, gt, proxy_higher_is_better=True, target_higher_is_better=True)
    ladder = within_blocks(key, fit.keys, gp, gt, blocks, pooled=pooled.accuracy)
    warn_if_disagreeing(ladder, "on the fit's ladder, ")
    return {**ladder, "block": values[0]}


def _noise_outside(
    draws: CurveDraws, x: np.ndarray, stderr: np.ndarray, fitted: tuple[float, float]
) -> list[float | None]:
    """Per run, the share of its score's noise draws (its own column, as in every command)
    outside the fitted proxy range; None without a stderr."""
    moved = draws.perturbed(x, stderr, 0)
    low, high = fitted
    out: list[float | None] = []
    for k, se in enumerate(stderr):
        if not np.isfinite(se):
            out.append(None)
            continue
        out.append(float(np.mean((moved[:, k] < low) | (moved[:, k] > high))))
    return out


def _warn_noise_outside(
    runs: list[tuple[str, float | None, float]], fitted: tuple[float, float]
) -> None:
    """One line for the runs inside the fitted range whose noisy score often leaves it (those
    outside are already reported as extrapolating)."""
    low, high = fitted
    flagged = [
        (name, share)
        for name, share, x in runs
        if share is not None and share > NOISE_OUTSIDE_SHARE and low <= x <= high
    ]
    if flagged:
        listed = ", ".join(f"{name} {share:.0%}" for name, share in flagged)
        warnings.warn(
            f"extrapolation from score noise: moved by its lm-eval stderr, the proxy score "
            f"leaves the fitted range [{low:.6g}, {high:.6g}] in this share of the bootstrap "
            f"draws: {listed}",
            FitWarning,
            stacklevel=2,
        )


def _warn_about_fit(
    outcome: FitOutcome, draws: CurveDraws | None, target_flag: str | None = None
) -> None:
    messages = []
    skill = outcome.skill()
    if skill["no_skill"]:
        messages.append(skill["message"])
    turn = outcome.turns_at()
    if turn is not None:
        low, high = outcome.estimator.x_range_
        messages.append(
            f"the {outcome.form} curve turns at proxy score {turn:.6g}, inside the fitted range "
            f"[{low:.6g}, {high:.6g}]: there a worse proxy score predicts a better target "
            "(the free quadratic of --allow-turning)"
        )
    if draws is not None and draws.n_failed:
        messages.append(
            f"{draws.n_failed} of {draws.n_boot} bootstrap refits failed "
            f"({draws.n_failed / draws.n_boot:.1%}; refused above {draws.alpha / 2:.1%}): the "
            "interval comes from the others"
        )
    if target_flag:
        messages.append(target_flag)
    for message in messages:
        warnings.warn(message, FitWarning, stacklevel=3)


def _predicts(target: dict[str, Any]) -> dict[str, Any]:
    return {k: target[k] for k in ("task", "metric", "filter", "shared")}


def _protocol(outcome: FitOutcome) -> dict[str, Any]:
    keys = (
        "train_r2",
        "r2",
        "r2_sd",
        "r2_min",
        "r2_max",
        "r2_fold_mean",
        "mae",
        "mae_sd",
        "mae_min",
        "mae_max",
        "n_folds",
        "repeats",
    )
    forms = {}
    for name, result in outcome.cv.items():
        s = result.summary()
        forms[name] = {k: s[k] for k in keys}
    options = outcome.options
    chosen = outcome.chosen_cv
    return {
        "select": options.select if options.form == "auto" else "fixed",
        "folds": options.folds,
        "leave_one_out": chosen.runs[0].n_folds == len(outcome.y),
        "repeats": len(chosen.runs),
        "seeds": chosen.seeds,
        "seed": options.seed,
        "monotone": options.monotone,
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
