"""The paper's protocol as an estimator: choose the fit form by R2 under k-fold CV, then refit.

rBridge picks among linear, quadratic, exponential and logarithmic fits by *train* R2 averaged over
5 folds and reports test MAE. Train R2 never prefers the linear form over the quadratic one (the
quadratic contains it), so `select_by="test_r2"` or `"test_mae"` (pooled out-of-fold) is offered
for users who want the choice itself to be validated; the default follows the paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from predictors.choices import PAPER_FORMS
from predictors.estimators import make_form
from predictors.evaluation import CVResult, cross_validate_fit, kfold_splits
from rbridge_tasks.errors import RBridgeError

SELECT_BY = {"train_r2": ("train_r2", max), "test_r2": ("r2", max), "test_mae": ("mae", min)}


class FormSelector(RegressorMixin, BaseEstimator):
    """Fit each candidate form under the same k-fold split, keep the best by `select_by`.

    Forms that cannot be fitted to the data (a logarithm of non-positive scores, too few distinct
    points for a quadratic) are skipped and listed in `skipped_forms_` with the reason.
    """

    def __init__(
        self,
        forms: tuple[str, ...] = PAPER_FORMS,
        folds: int = 5,
        select_by: str = "train_r2",
        random_state: int = 0,
        chance: float = 0.0,
        ceiling: float = 1.0,
    ) -> None:
        self.forms = forms
        self.folds = folds
        self.select_by = select_by
        self.random_state = random_state
        self.chance = chance
        self.ceiling = ceiling

    def fit(self, X: Any, y: Any) -> FormSelector:
        X, y = validate_data(self, X, y, y_numeric=True)
        if self.select_by not in SELECT_BY:
            raise RBridgeError(
                f"select_by must be one of {sorted(SELECT_BY)}, got {self.select_by!r}"
            )
        if "ladder" in self.forms:
            raise RBridgeError(
                "the ladder needs an intermediate metric and cannot be chosen "
                "automatically; fit it with form='ladder'"
            )
        if len(y) < 3:
            raise RBridgeError(
                f"choosing a form by cross-validation needs at least 3 points, "
                f"got {len(y)} (n_samples = {len(y)})"
            )
        splits, self.notes_ = kfold_splits(len(y), self.folds, self.random_state)
        self.cv_results_: dict[str, CVResult] = {}
        self.skipped_forms_: dict[str, str] = {}
        for name in self.forms:
            candidate = make_form(name, chance=self.chance, ceiling=self.ceiling)
            try:
                self.cv_results_[name] = cross_validate_fit(candidate, X, y, splits=splits)
            except ValueError as exc:
                self.skipped_forms_[name] = str(exc)
        if not self.cv_results_:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.skipped_forms_.items())
            raise RBridgeError(f"no fit form could be fitted ({reasons})")
        key, best = SELECT_BY[self.select_by]
        scores = {name: _criterion(res, key) for name, res in self.cv_results_.items()}
        finite = {name: s for name, s in scores.items() if np.isfinite(s)}
        if not finite:
            raise RBridgeError(f"every form has an undefined {key} (constant targets?)")
        self.form_ = best(finite, key=finite.__getitem__)
        self.estimator_ = make_form(self.form_, chance=self.chance, ceiling=self.ceiling)
        self.estimator_.fit(X, y)
        self.x_range_ = self.estimator_.x_range_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.estimator_.predict(X)

    def curve_params(self) -> dict[str, Any]:
        return self.estimator_.curve_params()


def _criterion(result: CVResult, key: str) -> float:
    if key == "train_r2":
        return result.summary()["train_r2"]
    return float(getattr(result, key))
