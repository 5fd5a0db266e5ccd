"""Choose the fit form by cross-validated error, then refit it on every point.

The default criterion, `select="cv_r2"`, is the pooled out-of-fold R2 (every point predicted
once by a fit that did not see it), averaged over repeated shuffled k-fold splits. Why this one:
- held out, because train R2 rewards flexibility: it never prefers the linear form to the
  quadratic, which contains it, and on a 4-6 point ladder the quadratic wins in-sample while
  predicting unseen recipes far worse than the logarithm;
- squared rather than absolute error, because the failures that mislead a decision are the rare
  wild held-out predictions (a curve turning or shooting off in one fold), which MAE discounts;
- pooled rather than the mean of per-fold R2, which is undefined or wild with 1-2 points a fold;
- R2 rather than raw MSE for the same ranking (one shared denominator per data set) plus a scale
  that says when the fit has no skill at all: pooled CV R2 <= 0 means the fit predicts unseen
  points no better than their mean does;
- over repeats, because one shuffle of a few points can make any form look good or bad by luck.
`select="cv_mae"` ranks by the mean held-out absolute error instead; `select="train_r2"` is the
paper's protocol (rBridge, arXiv 2509.21013: the best mean train R2 over 5 folds), kept to
reproduce it, not recommended.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from predictors.choices import DEFAULT_FORMS, FORM_NAMES, SELECT_NAMES
from predictors.fitting.estimators import (
    make_form,
    require_bool,
    require_chance_below_ceiling,
    require_finite,
    require_int,
)
from predictors.fitting.evaluation import RepeatedCV, repeat_splits, repeated_cross_validation
from rbridge_tasks.core.errors import RBridgeError

# each criterion of `choices.SELECT_NAMES`: the column it reads and whether the best is its max
SELECT = dict(zip(SELECT_NAMES, (("r2", max), ("mae", min), ("train_r2", max)), strict=True))
MIN_CV_POINTS = 3


class FormSelector(RegressorMixin, BaseEstimator):
    """Fit each candidate form under the same repeated k-fold splits, keep the best by `select`.

    Forms that cannot be fitted to the data (a logarithm of non-positive scores, too few distinct
    points for a quadratic, targets above the sigmoid's ceiling) are skipped and listed in
    `skipped_forms_` with the reason. `bounds` (an accuracy's (0, 1)) clips held-out predictions
    before they are scored, as every prediction of a bounded target is clipped.

    Parameters
    ----------
    forms : tuple of str, default all of `choices.FORM_NAMES`
        The candidates (not `ladder`, which needs an intermediate metric).
    folds, repeats, random_state : int, default 5, 5, 0
        k of the k-fold CV, how many shuffles, and the seed of the first (repeat r uses
        `random_state + r`). Fewer points than folds gives leave-one-out, once.
    select : {"cv_r2", "cv_mae", "train_r2"}, default "cv_r2"
        The criterion (see the module docstring).
    chance, ceiling : float, default 0.0, 1.0
        The sigmoid's floor and top (`SigmoidFit`).
    monotone : bool, default True
        Passed to `QuadraticFit`.
    bounds : (float, float) or None, default None
        The target's range, e.g. (0, 1) for an accuracy.

    Attributes
    ----------
    form_ : str
        The chosen form.
    estimator_ : regressor
        The chosen form refitted on all the data.
    cv_results_ : dict of str to RepeatedCV
        Every candidate's cross-validation.
    skipped_forms_ : dict of str to str
        The candidates that could not be fitted, with the reason.
    notes_ : list of str
        What the splits had to give up (e.g. leave-one-out).
    x_range_ : tuple of float
        The fitted proxy range.
    """

    def __init__(
        self,
        *,
        forms: tuple[str, ...] = DEFAULT_FORMS,
        folds: int = 5,
        repeats: int = 5,
        select: str = SELECT_NAMES[0],
        random_state: int = 0,
        chance: float = 0.0,
        ceiling: float = 1.0,
        monotone: bool = True,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        self.forms = forms
        self.folds = folds
        self.repeats = repeats
        self.select = select
        self.random_state = random_state
        self.chance = chance
        self.ceiling = ceiling
        self.monotone = monotone
        self.bounds = bounds

    def fit(self, X: Any, y: Any) -> FormSelector:
        """Cross-validate every candidate form on (X, y), then refit the best on all of it.

        Raises
        ------
        RBridgeError
            A bad parameter (checked first, before the data), fewer than `MIN_CV_POINTS`
            points, no form that could be fitted, or every form's criterion undefined.
        """
        self._check_params()
        X, y = validate_data(self, X, y, y_numeric=True)
        if len(y) < MIN_CV_POINTS:
            raise RBridgeError(
                f"choosing a form by cross-validation needs at least {MIN_CV_POINTS} points, "
                f"got {len(y)} (n_samples = {len(y)})"
            )
        splits = repeat_splits(len(y), self.folds, self.repeats, self.random_state)
        self.notes_ = list(splits[2])
        self.cv_results_: dict[str, RepeatedCV] = {}
        self.skipped_forms_: dict[str, str] = {}
        for name in self.forms:
            if name == "sigmoid" and float(np.max(y)) > self.ceiling:
                self.skipped_forms_[name] = (
                    f"targets up to {float(np.max(y)):.6g} exceed its ceiling {self.ceiling:g} "
                    "(percentages? set --ceiling 100)"
                )
                continue
            candidate = make_form(
                name, chance=self.chance, ceiling=self.ceiling, monotone=self.monotone
            )
            try:
                self.cv_results_[name] = repeated_cross_validation(
                    candidate, X, y, bounds=self.bounds, splits=splits
                )
            except ValueError as exc:
                self.skipped_forms_[name] = str(exc)
        if not self.cv_results_:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.skipped_forms_.items())
            raise RBridgeError(f"no fit form could be fitted ({reasons})")
        key, best = SELECT[self.select]
        scores = {name: res.summary()[key] for name, res in self.cv_results_.items()}
        finite = {name: s for name, s in scores.items() if np.isfinite(s)}
        if not finite:
            raise RBridgeError(f"every form has an undefined {key} (constant targets?)")
        self.form_ = best(finite, key=finite.__getitem__)
        self.estimator_ = make_form(
            self.form_, chance=self.chance, ceiling=self.ceiling, monotone=self.monotone
        )
        self.estimator_.fit(X, y)
        self.x_range_ = self.estimator_.x_range_
        return self

    def _check_params(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.select, str) or self.select not in SELECT:
            raise RBridgeError(f"select must be one of {sorted(SELECT)}, got {self.select!r}")
        if isinstance(self.forms, str) or not isinstance(self.forms, (tuple, list)):
            raise RBridgeError(
                f"{owner}: forms must be a tuple of form names such as ('linear',), "
                f"got {self.forms!r}"
            )
        if "ladder" in self.forms:
            raise RBridgeError(
                "the ladder needs an intermediate metric and cannot be chosen "
                "automatically; fit it with form='ladder'"
            )
        unknown = [name for name in self.forms if name not in FORM_NAMES]
        if unknown or not self.forms:
            raise RBridgeError(
                f"{owner}: forms must name at least one of {', '.join(FORM_NAMES)}, "
                f"got {self.forms!r}"
            )
        require_int(owner, "folds", self.folds, at_least=2)
        require_int(owner, "repeats", self.repeats, at_least=1)
        require_int(owner, "random_state", self.random_state)
        require_bool(owner, "monotone", self.monotone)
        if "sigmoid" in self.forms:
            require_chance_below_ceiling(owner, self.chance, self.ceiling)
        if self.bounds is not None:
            if not isinstance(self.bounds, (tuple, list)) or len(self.bounds) != 2:
                raise RBridgeError(
                    f"{owner}: bounds must be None or (low, high), got {self.bounds!r}"
                )
            low, high = (require_finite(owner, "bounds", v) for v in self.bounds)
            if not low < high:
                raise RBridgeError(f"{owner}: bounds need low < high, got {self.bounds!r}")

    def predict(self, X: Any) -> np.ndarray:
        """The chosen form's prediction, clipped to `bounds` when they are set."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        prediction = self.estimator_.predict(X)
        return prediction if self.bounds is None else np.clip(prediction, *self.bounds)

    def curve_params(self) -> dict[str, Any]:
        """The chosen form's fitted curve (see `estimators.curve_values`)."""
        return self.estimator_.curve_params()
