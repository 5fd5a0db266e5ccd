"""One fit of joined (proxy score, target accuracy) points, with its CV record and intervals.

Shared by `fit`, `evaluate`, `compare`, `leaderboard` and `gate`, so they all choose the form,
validate it, clip and build intervals the same way.

A target is bounded when it is a rate: observed values all in [0, 1] (an accuracy as lm-eval
reports it), or an accuracy-like metric in percent ([0, 100]). Then every prediction of it (the
curve, held-out CV predictions, interval draws) is clipped to that range where it is computed.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from predictors.choices import DEFAULT_FORMS, SELECT_NAMES
from predictors.data.join import FRACTION_METRICS
from predictors.fitting.estimators import ExtrapolationWarning, make_form
from predictors.fitting.evaluation import RepeatedCV, clip, r2, repeated_cross_validation
from predictors.fitting.intervals import KINDS, CurveDraws, bootstrap_curves
from predictors.fitting.selection import MIN_CV_POINTS, FormSelector
from rbridge_tasks.core.errors import RBridgeError

# Least squares sums squares of the values: beyond sqrt(float max) ~ 1.3e154 they overflow.
MAX_MAGNITUDE = 1e150
PERCENT_RANGE = (0.0, 100.0)  # an accuracy-like metric (`join.FRACTION_METRICS`) in percent


@dataclass(frozen=True)
class FitOptions:
    """Every choice that changes the numbers; stored in fit files so a reload refits the same."""

    form: str = "auto"
    forms: tuple[str, ...] = DEFAULT_FORMS
    folds: int = 5
    repeats: int = 5
    select: str = SELECT_NAMES[0]
    seed: int = 0
    chance: float = 0.0
    ceiling: float = 1.0
    monotone: bool = True
    n_boot: int = 1000
    alpha: float = 0.1
    interval: str = "prediction"

    def __post_init__(self) -> None:
        if self.interval not in KINDS:
            raise RBridgeError(f"interval must be one of {KINDS}, got {self.interval!r}")
        if self.select not in SELECT_NAMES:
            raise RBridgeError(f"select must be one of {SELECT_NAMES}, got {self.select!r}")
        if self.folds < 2:
            raise RBridgeError(f"folds must be at least 2, got {self.folds}")
        if self.repeats < 1:
            raise RBridgeError(f"--cv-repeats must be at least 1, got {self.repeats}")
        if not 0 < self.alpha < 1:
            raise RBridgeError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.n_boot < 10:
            raise RBridgeError(f"--n-boot must be at least 10, got {self.n_boot}")

    def describe(self) -> dict[str, Any]:
        """The options as JSON (the fit file's `options`), read back by `from_dict`."""
        return {**asdict(self), "forms": list(self.forms)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FitOptions:
        """The options a fit file stored; checked again, as if given on the command line."""
        return cls(**{**raw, "forms": tuple(raw.get("forms", DEFAULT_FORMS))})


@dataclass
class FitOutcome:
    """A fitted form with the points, the CV of every candidate, the forms skipped and why,
    and the options and bounds it was fitted under: all a report or a fit file needs."""

    estimator: BaseEstimator
    form: str
    X: np.ndarray
    y: np.ndarray
    fit_params: dict[str, np.ndarray]
    cv: dict[str, RepeatedCV]
    skipped: dict[str, str]
    options: FitOptions
    bounds: tuple[float, float] | None
    notes: list[str] = field(default_factory=list)

    @property
    def chosen_cv(self) -> RepeatedCV:
        """The repeated CV of the chosen form: its held-out error and residuals."""
        return self.cv[self.form]

    @property
    def train_r2(self) -> float:
        """In-sample R2 of the clipped fit; reported beside the CV R2, never used to choose."""
        return r2(self.y, self.predict(self.X[:, 0]))

    def predict(self, x: Any) -> np.ndarray:
        """The fit's prediction of the target, clipped to its range (see the module docstring)."""
        column = np.asarray(x, dtype=float).reshape(-1, 1)
        return clip(self.estimator.predict(column), self.bounds)

    def curve(self, x: Any) -> np.ndarray:
        """`predict` without extrapolation warnings: for drawing the curve and its band."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtrapolationWarning)
            return self.predict(x)

    def skill(self) -> dict[str, Any]:
        """Is the fit better out of sample than predicting the mean? (pooled CV R2 > 0)"""
        cv_r2 = self.chosen_cv.r2
        no_skill = not cv_r2 > 0
        message = None
        if no_skill:
            message = (
                f"no skill: out of sample the {self.form} fit predicts no better than the mean "
                f"target ({float(np.mean(self.y)):.4g}), cross-validated R2 {cv_r2:.3f} <= 0; "
                "do not act on its predictions"
            )
        return {"cv_r2": cv_r2, "no_skill": no_skill, "message": message}

    def turns_at(self) -> float | None:
        """Where the fitted curve turns inside the data (a free quadratic), else None."""
        return self.estimator.turns_at()

    def bootstrap(self, progress: bool = False) -> CurveDraws:
        """`options.n_boot` refits of the chosen form for the `options.interval` intervals,
        drawn from the held-out residuals of its CV (see `intervals.bootstrap_curves`)."""
        options = self.options
        return bootstrap_curves(
            make_form(
                self.form,
                chance=options.chance,
                ceiling=options.ceiling,
                monotone=options.monotone,
            ),
            self.X,
            self.y,
            self.chosen_cv.residuals,
            n_boot=options.n_boot,
            alpha=options.alpha,
            kind=options.interval,
            random_state=options.seed,
            fit_params=self.fit_params or None,
            bounds=self.bounds,
            progress=progress,
        )


def target_bounds(y: Any, metric: str | None = None) -> tuple[float, float] | None:
    """The range a prediction of this target must stay in (module docstring), or None."""
    y = np.asarray(y, dtype=float)
    if np.all((y >= 0) & (y <= 1)):
        return (0.0, 1.0)
    if metric in FRACTION_METRICS and np.all((y >= 0) & (y <= 100)):
        return PERCENT_RANGE
    return None


def require_cv_points(keys: list[Any]) -> None:
    """The one rule of `fit`, `evaluate` and `compare`: a form is chosen, and its error and
    intervals measured, on held-out points, so at least MIN_CV_POINTS joined points."""
    if len(keys) < MIN_CV_POINTS:
        shown = ", ".join(repr(str(k)) for k in keys[:5])
        label = "key" if len(keys) == 1 else "keys"
        raise RBridgeError(
            f"only {len(keys)} joined proxy/target point(s)"
            + (f" ({label} {shown})" if keys else "")
            + f"; a fit needs at least {MIN_CV_POINTS}, for cross-validation (its form is "
            "chosen, and its error and intervals measured, on held-out points)"
        )


def fit_pairs(
    pairs: pd.DataFrame, options: FitOptions, bounds: tuple[float, float] | None = None
) -> FitOutcome:
    """Choose (or take) the form by repeated CV and fit it on all joined points."""
    X = pairs[["x"]].to_numpy(float)
    y = pairs["y"].to_numpy(float)
    fit_params = {"intermediate": pairs["z"].to_numpy(float)} if "z" in pairs else {}
    if options.form == "ladder" and not fit_params:
        raise RBridgeError(
            "form 'ladder' needs --intermediate-metric (a target-scale metric "
            "such as the large model's NLL on the task)"
        )
    for column, name in (("x", "proxy"), ("y", "target")):
        too_large = pairs[~(np.abs(pairs[column].to_numpy(float)) <= MAX_MAGNITUDE)]
        if len(too_large):
            row = too_large.iloc[0]
            raise RBridgeError(
                f"{name} value {float(row[column]):g} of {row.get(f'{name}_source', row['key'])} "
                f"(key {row['key']!r}) would overflow the fit: values beyond "
                f"{MAX_MAGNITUDE:g} have squares past the float range; rescale the scores"
            )
    require_cv_points(pairs["key"].tolist())
    common = {"chance": options.chance, "ceiling": options.ceiling, "monotone": options.monotone}
    if options.form == "auto":
        selector = FormSelector(
            forms=options.forms,
            folds=options.folds,
            repeats=options.repeats,
            select=options.select,
            random_state=options.seed,
            bounds=bounds,
            **common,
        )
        selector.fit(X, y)
        return FitOutcome(
            estimator=selector.estimator_,
            form=selector.form_,
            X=X,
            y=y,
            fit_params=fit_params,
            cv=selector.cv_results_,
            skipped=selector.skipped_forms_,
            options=options,
            bounds=bounds,
            notes=list(selector.notes_),
        )
    estimator = make_form(options.form, **common)
    cv = repeated_cross_validation(
        estimator,
        X,
        y,
        folds=options.folds,
        repeats=options.repeats,
        random_state=options.seed,
        fit_params=fit_params or None,
        bounds=bounds,
    )
    estimator.fit(X, y, **fit_params)
    return FitOutcome(
        estimator=estimator,
        form=options.form,
        X=X,
        y=y,
        fit_params=fit_params,
        cv={options.form: cv},
        skipped={},
        options=options,
        bounds=bounds,
        notes=list(cv.notes),
    )


def curve_grid(x: np.ndarray, points: int = 200) -> np.ndarray:
    """Where to draw the fitted curve: log-spaced when positive scores span 2+ decades."""
    low, high = float(np.min(x)), float(np.max(x))
    if low > 0 and high / low > 100:
        return np.geomspace(low, high, points)
    return np.linspace(low, high, points)
