"""How well a fit form predicts held-out large-model accuracy: k-fold, by group, extrapolation.

R2 and MAE are computed here rather than taken from sklearn.metrics so that the tests can check
them against sklearn as an independent implementation.

Conventions (documented because papers differ):
- k-fold is shuffled with a fixed seed (scores are often sorted by checkpoint or size, and
  unshuffled folds would silently turn k-fold into extrapolation);
- `r2` of a CV run is computed on the pooled out-of-fold predictions (every point predicted once,
  by a fit that did not see it); the mean of the per-fold R2 (what `cross_val_score(scoring="r2")`
  gives, noisy with 2-5 points per fold) is reported as `r2_fold_mean`;
- the paper's form choice uses the mean over folds of the *train* R2 (`train_r2`);
- R2 is NaN, not 0 or -inf, when it is undefined (fewer than 2 points or constant targets);
- with `bounds` (an accuracy's [0, 1]) held-out predictions are clipped to that range before they
  are scored: a prediction of an accuracy is never above 1 or below 0;
- `repeated_cross_validation` runs k-fold under `repeats` shuffles (seeds seed, seed + 1, ...):
  one split of 5-30 points can make a form look good or bad by luck, so every CV figure reported
  is the mean over repeats, with its spread (sd, min, max). Leave-one-out has one split only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold

from predictors.fitting.estimators import ExtrapolationWarning, TooFewPointsWarning
from rbridge_tasks.core.errors import RBridgeError


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if len(y_true) < 2:
        return float("nan")
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / ss_tot


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error, in the units of the target (accuracy as a fraction)."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    return float(np.mean(np.abs(y_true - y_pred))) if len(y_true) else float("nan")


@dataclass
class CVResult:
    """Out-of-fold predictions and the scores computed from them."""

    predictions: np.ndarray
    fold: np.ndarray
    train_r2: list[float]
    test_r2: list[float]
    r2: float
    r2_fold_mean: float
    mae: float
    n_folds: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The figures as the JSON reports show them (per-fold lists included)."""
        return {
            "n_folds": self.n_folds,
            "train_r2": _nanmean(self.train_r2),
            "r2": self.r2,
            "r2_fold_mean": self.r2_fold_mean,
            "mae": self.mae,
            "train_r2_per_fold": self.train_r2,
            "test_r2_per_fold": self.test_r2,
        }


def kfold_splits(n: int, folds: int, random_state: int) -> tuple[list[tuple], list[str]]:
    """Shuffled k-fold, shrunk to leave-one-out (with a note) when there are fewer points."""
    if n < 3:
        raise RBridgeError(f"cross-validation needs at least 3 joined points, got {n}")
    notes = []
    if n < folds:
        notes.append(f"only {n} points for {folds}-fold CV: used leave-one-out ({n} folds)")
        folds = n
    return list(KFold(folds, shuffle=True, random_state=random_state).split(np.zeros(n))), notes


def cross_validate_fit(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    *,
    folds: int = 5,
    random_state: int = 0,
    fit_params: dict[str, Any] | None = None,
    splits: list[tuple] | None = None,
    bounds: tuple[float, float] | None = None,
) -> CVResult:
    """k-fold CV of one form; fit_params are per-sample arrays split like X (the ladder's)."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    notes: list[str] = []
    if splits is None:
        splits, notes = kfold_splits(len(y), folds, random_state)
    predictions = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1)
    train_r2, test_r2 = [], []
    for k, (train, test) in enumerate(splits):
        fitted = fit_quietly(estimator, X[train], y[train], _subset(fit_params, train))
        train_r2.append(r2(y[train], predict_quietly(fitted, X[train])))
        predictions[test] = clip(predict_quietly(fitted, X[test]), bounds)
        fold_of[test] = k
        test_r2.append(r2(y[test], predictions[test]))
    return CVResult(
        predictions=predictions,
        fold=fold_of,
        train_r2=train_r2,
        test_r2=test_r2,
        r2=r2(y, predictions),
        r2_fold_mean=_nanmean(test_r2),
        mae=mae(y, predictions),
        n_folds=len(splits),
        notes=notes,
    )


@dataclass
class RepeatedCV:
    """k-fold CV of one form under several shuffles; the figures are means over the repeats."""

    runs: list[CVResult]
    seeds: list[int]
    y: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """Held-out predictions of the first repeat (seed = the fit's seed), one per point."""
        return self.runs[0].predictions

    @property
    def fold(self) -> np.ndarray:
        """The fold that held out each point in the first repeat (for the CV plot)."""
        return self.runs[0].fold

    @property
    def residuals(self) -> np.ndarray:
        """Every held-out residual of every repeat: the scatter of unseen points around a fit."""
        return np.concatenate([self.y - run.predictions for run in self.runs])

    @property
    def r2(self) -> float:
        """Pooled out-of-fold R2, averaged over the repeats: the default selection criterion."""
        return _nanmean([run.r2 for run in self.runs])

    @property
    def mae(self) -> float:
        """Held-out mean absolute error, averaged over the repeats."""
        return _nanmean([run.mae for run in self.runs])

    @property
    def notes(self) -> list[str]:
        """What the splits had to give up (leave-one-out for few points); the same each repeat."""
        return self.runs[0].notes

    def summary(self) -> dict[str, Any]:
        """Means over repeats with their spread (sd, min, max), as the JSON reports show them."""
        r2s = [run.r2 for run in self.runs]
        maes = [run.mae for run in self.runs]
        return {
            "n_folds": self.runs[0].n_folds,
            "repeats": len(self.runs),
            "seeds": self.seeds,
            "train_r2": _nanmean([v for run in self.runs for v in run.train_r2]),
            "r2": self.r2,
            "r2_sd": _spread(r2s),
            "r2_min": _nanmin(r2s),
            "r2_max": _nanmax(r2s),
            "r2_fold_mean": _nanmean([run.r2_fold_mean for run in self.runs]),
            "mae": self.mae,
            "mae_sd": _spread(maes),
            "mae_min": _nanmin(maes),
            "mae_max": _nanmax(maes),
            "r2_per_repeat": r2s,
            "mae_per_repeat": maes,
            "train_r2_per_fold": self.runs[0].train_r2,
            "test_r2_per_fold": self.runs[0].test_r2,
        }


def repeat_splits(
    n: int, folds: int, repeats: int, seed: int
) -> tuple[list[int], list[list[tuple]], list[str]]:
    """The seeds and k-fold splits of each repeat; one leave-one-out split when n <= folds."""
    if repeats < 1:
        raise RBridgeError(f"CV repeats must be at least 1, got {repeats}")
    if folds < 2:
        raise RBridgeError(f"CV folds must be at least 2, got {folds}")
    first, notes = kfold_splits(n, folds, seed)
    if len(first) == n:  # leave-one-out: every shuffle gives the same split
        if repeats > 1:
            notes = [
                f"{notes[0] if notes else f'{n} points for {folds}-fold CV: leave-one-out'}"
                ", one split: not repeated"
            ]
        return [seed], [first], notes
    seeds = [seed + r for r in range(repeats)]
    return seeds, [first] + [kfold_splits(n, folds, s)[0] for s in seeds[1:]], notes


def repeated_cross_validation(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    *,
    folds: int = 5,
    repeats: int = 5,
    random_state: int = 0,
    fit_params: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
    splits: tuple[list[int], list[list[tuple]], list[str]] | None = None,
) -> RepeatedCV:
    """`cross_validate_fit` under each repeat's split (`repeat_splits`, or `splits` given)."""
    y = np.asarray(y, dtype=float)
    seeds, split_sets, notes = splits or repeat_splits(len(y), folds, repeats, random_state)
    runs = [
        cross_validate_fit(estimator, X, y, splits=s, fit_params=fit_params, bounds=bounds)
        for s in split_sets
    ]
    runs[0].notes = list(notes)
    return RepeatedCV(runs=runs, seeds=seeds, y=y)


def clip(values: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """Predictions of a bounded quantity (an accuracy) held to its range."""
    return values if bounds is None else np.clip(values, *bounds)


def leave_one_group_out(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    groups: Any,
    fit_params: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Hold out each group (e.g. a model family or data recipe) in turn: can the fit predict a
    kind of run it never saw, not just another point of a kind it did?"""
    X, y, groups = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise RBridgeError(f"leave-one-group-out needs at least 2 groups, got {names}")
    splits = [(np.flatnonzero(groups != g), np.flatnonzero(groups == g)) for g in names]
    result = cross_validate_fit(
        estimator, X, y, splits=splits, fit_params=fit_params, bounds=bounds
    )
    per_group = [
        {
            "group": g,
            "n": len(test),
            "r2": result.test_r2[k],
            "mae": mae(y[test], result.predictions[test]),
        }
        for k, (g, (_, test)) in enumerate(zip(names, splits, strict=True))
    ]
    return {
        "groups": per_group,
        "r2": result.r2,
        "mae": result.mae,
        "predictions": result.predictions,
    }


def extrapolation_split(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    *,
    proxy_higher_is_better: bool,
    fraction: float = 0.2,
    fit_params: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Fit on the weaker proxy scores, test on the best `fraction`: can it predict better models?"""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    if not 0 < fraction < 1:
        raise RBridgeError(f"extrapolation fraction must be in (0, 1), got {fraction}")
    n_test = max(1, round(fraction * len(y)))
    if len(y) - n_test < 2:
        raise RBridgeError(f"extrapolation split needs at least 3 points, got {len(y)}")
    goodness = X[:, 0] if proxy_higher_is_better else -X[:, 0]
    order = np.argsort(goodness, kind="stable")
    train, test = order[:-n_test], order[-n_test:]
    fitted = fit_quietly(estimator, X[train], y[train], _subset(fit_params, train))
    pred = clip(predict_quietly(fitted, X[test]), bounds)
    return {
        "n_train": len(train),
        "n_test": int(n_test),
        "test_index": test.tolist(),
        "predictions": pred.tolist(),
        "r2": r2(y[test], pred),
        "mae": mae(y[test], pred),
        "train_proxy_range": [float(X[train, 0].min()), float(X[train, 0].max())],
    }


def too_small_groups(
    estimator: BaseEstimator, X: Any, y: Any, groups: Any, fit_params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The groups the form cannot be fitted on alone (too few or too alike points), with why."""
    X, y, groups = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(groups)
    out = []
    for name in sorted(set(groups.tolist())):
        index = np.flatnonzero(groups == name)
        try:
            fit_quietly(estimator, X[index], y[index], _subset(fit_params, index))
        except (ValueError, np.linalg.LinAlgError) as exc:  # RBridgeError is a ValueError
            out.append({"group": name, "n": len(index), "reason": str(exc)})
    return out


def zero_shot_transfer(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    groups: Any,
    fit_params: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """Fit on one group, predict another untouched (the paper's cross-corpus transfer)."""
    X, y, groups = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise RBridgeError(f"zero-shot transfer needs at least 2 groups, got {names}")
    rows = []
    for source in names:
        train = np.flatnonzero(groups == source)
        fitted = fit_quietly(estimator, X[train], y[train], _subset(fit_params, train))
        for target in names:
            if target == source:
                continue
            test = np.flatnonzero(groups == target)
            pred = clip(predict_quietly(fitted, X[test]), bounds)
            rows.append(
                {
                    "fit_on": source,
                    "test_on": target,
                    "n_train": len(train),
                    "n_test": len(test),
                    "r2": r2(y[test], pred),
                    "mae": mae(y[test], pred),
                }
            )
    return rows


def fit_quietly(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, fit_params: dict[str, Any] | None = None
) -> BaseEstimator:
    """Fit a clone without per-fold small-sample warnings (the caller reports them once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TooFewPointsWarning)
        return clone(estimator).fit(X, y, **(fit_params or {}))


def predict_quietly(fitted: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """Predict without extrapolation warnings: held-out points outside a fold's range are
    expected in CV and are the whole point of the extrapolation split."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return fitted.predict(X)


def _subset(fit_params: dict[str, Any] | None, index: np.ndarray) -> dict[str, Any] | None:
    if not fit_params:
        return None
    return {name: np.asarray(value)[index] for name, value in fit_params.items()}


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _nanmin(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.min(finite)) if finite else float("nan")


def _nanmax(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.max(finite)) if finite else float("nan")


def _spread(values: list[float]) -> float:
    """Sample standard deviation over repeats; undefined (NaN) for a single one."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
