"""One fit of joined (proxy score, target accuracy) points, with its CV record and intervals.

Shared by `fit`, `evaluate`, `leaderboard` and `gate`, so they all choose the form, validate it
and build intervals the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from predictors.choices import PAPER_FORMS
from predictors.estimators import TooFewPointsWarning, make_form
from predictors.evaluation import CVResult, cross_validate_fit, r2
from predictors.intervals import KINDS, BootstrapResult, bootstrap_predictions
from predictors.selection import FormSelector
from rbridge_tasks.errors import RBridgeError

# Least squares sums squares of the values: beyond sqrt(float max) ~ 1.3e154 they overflow.
MAX_MAGNITUDE = 1e150


@dataclass(frozen=True)
class FitOptions:
    """Every choice that changes the numbers; stored in fit files so a reload refits the same."""

    form: str = "auto"
    forms: tuple[str, ...] = PAPER_FORMS
    folds: int = 5
    select_by: str = "train_r2"
    seed: int = 0
    chance: float = 0.0
    ceiling: float = 1.0
    n_boot: int = 1000
    alpha: float = 0.1
    interval: str = "prediction"

    def __post_init__(self) -> None:
        if self.interval not in KINDS:
            raise RBridgeError(f"interval must be one of {KINDS}, got {self.interval!r}")
        if self.folds < 2:
            raise RBridgeError(f"folds must be at least 2, got {self.folds}")

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "forms": list(self.forms)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FitOptions:
        return cls(**{**raw, "forms": tuple(raw.get("forms", PAPER_FORMS))})


@dataclass
class FitOutcome:
    estimator: BaseEstimator
    form: str
    X: np.ndarray
    y: np.ndarray
    fit_params: dict[str, np.ndarray]
    cv: dict[str, CVResult]
    skipped: dict[str, str]
    options: FitOptions
    notes: list[str] = field(default_factory=list)

    @property
    def chosen_cv(self) -> CVResult | None:
        return self.cv.get(self.form)

    @property
    def train_r2(self) -> float:
        return r2(self.y, self.estimator.predict(self.X))

    def bootstrap(
        self, x_new: Any, x_new_stderr: Any = None, progress: bool = False
    ) -> BootstrapResult:
        return bootstrap_predictions(
            make_form(self.form, chance=self.options.chance, ceiling=self.options.ceiling),
            self.X,
            self.y,
            np.asarray(x_new, dtype=float).reshape(-1, 1),
            n_boot=self.options.n_boot,
            alpha=self.options.alpha,
            random_state=self.options.seed,
            fit_params=self.fit_params or None,
            x_new_stderr=x_new_stderr,
            # accuracies (every observed target value in [0, 1]) cannot leave [0, 1]; a linear
            # fit's bootstrap would otherwise give lower bounds below zero
            bounds=(0.0, 1.0) if np.all((self.y >= 0) & (self.y <= 1)) else None,
            progress=progress,
        )


def fit_pairs(pairs: pd.DataFrame, options: FitOptions) -> FitOutcome:
    """Choose (or take) the form, cross-validate it, and fit it on all joined points."""
    X = pairs[["x"]].to_numpy(float)
    y = pairs["y"].to_numpy(float)
    n = len(y)
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
    if n < 2:
        key = pairs["key"].iloc[0] if n else None
        raise RBridgeError(
            f"only {n} joined proxy/target point(s) (key {key!r}); a fit needs "
            "at least 2, and cross-validation at least 3"
        )
    if options.form == "auto":
        selector = FormSelector(
            forms=options.forms,
            folds=options.folds,
            select_by=options.select_by,
            random_state=options.seed,
            chance=options.chance,
            ceiling=options.ceiling,
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
            notes=list(selector.notes_),
        )
    estimator = make_form(options.form, chance=options.chance, ceiling=options.ceiling)
    cv: dict[str, CVResult] = {}
    notes: list[str] = []
    if n >= 3:
        cv[options.form] = cross_validate_fit(
            estimator,
            X,
            y,
            folds=options.folds,
            random_state=options.seed,
            fit_params=fit_params or None,
        )
        notes += cv[options.form].notes
    else:
        warnings.warn(
            f"only {n} points: no cross-validation, the fit is exact and untested",
            TooFewPointsWarning,
            stacklevel=2,
        )
    estimator.fit(X, y, **fit_params)
    return FitOutcome(
        estimator=estimator,
        form=options.form,
        X=X,
        y=y,
        fit_params=fit_params,
        cv=cv,
        skipped={},
        options=options,
        notes=notes,
    )


def curve_grid(x: np.ndarray, points: int = 200) -> np.ndarray:
    """Where to draw the fitted curve: log-spaced when positive scores span 2+ decades."""
    low, high = float(np.min(x)), float(np.max(x))
    if low > 0 and high / low > 100:
        return np.geomspace(low, high, points)
    return np.linspace(low, high, points)
