"""Fit forms mapping one proxy score to a large-model accuracy, as scikit-learn regressors.

The paper's four forms (linear, quadratic, exponential, logarithmic) plus a bounded sigmoid with a
chance floor and a two-step ladder. Every form is univariate: X has exactly one column, the proxy
score, so the estimators drop into `cross_val_score`, `Pipeline` and `clone` like any regressor.

Nonlinear forms are fitted on the standardised score z = (x - mean) / std: the raw scores can be
perplexities in the millions or NLLs near 1, and one parameterisation must work for both. The
coefficients are also reported in original units (`curve_params`).

Warnings, not errors, for fits that are legal but untrustworthy:
- `TooFewPointsWarning` when there are fewer than `POINTS_PER_PARAMETER` points per parameter;
- `ExtrapolationWarning` when `predict` is asked about scores outside the fitted range.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from rbridge_tasks.errors import RBridgeError

POINTS_PER_PARAMETER = 3


class ExtrapolationWarning(UserWarning):
    """A prediction was asked for a proxy score outside the range the fit saw."""


class TooFewPointsWarning(UserWarning):
    """The fit has so few points that its R2 says little about its predictions."""


class _UnivariateFit(RegressorMixin, BaseEstimator):
    """Shared validation, standardisation and range bookkeeping of the one-column forms."""

    form: ClassVar[str] = ""
    n_params: ClassVar[int] = 2

    def fit(self, X: Any, y: Any) -> _UnivariateFit:
        X, y = validate_data(self, X, y, y_numeric=True)
        require_points(self.form, len(X), self.n_params)
        x = _single_column(X)
        self._check_domain(x)
        warn_if_few_points(self.form, len(x), self.n_params)
        y = np.asarray(y, dtype=float)
        if len(np.unique(x)) < self.n_params:
            raise RBridgeError(
                f"{self.form} fit needs at least {self.n_params} distinct proxy scores, got "
                f"{len(np.unique(x))}"
            )
        self.x_range_ = (float(x.min()), float(x.max()))
        self.x_mean_ = float(x.mean())
        self.x_scale_ = float(x.std()) or 1.0
        self._fit_standardised(self._standardise(x), y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        x = X[:, 0].astype(float)
        self._check_domain(x)
        warn_if_extrapolating(self.form, x, self.x_range_)
        return self._predict_standardised(self._standardise(x))

    def _check_domain(self, x: np.ndarray) -> None:
        """Forms defined only on part of the real line refuse other scores here."""

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean_) / self.x_scale_

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def curve_params(self) -> dict[str, Any]:
        """The fitted curve in original units, for reports and for reloading checks."""
        raise NotImplementedError


class LinearFit(_UnivariateFit):
    """y = intercept + slope * x."""

    form = "linear"
    n_params = 2

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        self.beta_ = _lstsq(np.vander(z, 2, increasing=True), y)
        self.slope_ = float(self.beta_[1] / self.x_scale_)
        self.intercept_ = float(self.beta_[0] - self.slope_ * self.x_mean_)

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return np.vander(z, 2, increasing=True) @ self.beta_

    def curve_params(self) -> dict[str, Any]:
        return {
            "equation": "y = intercept + slope * x",
            "intercept": self.intercept_,
            "slope": self.slope_,
        }


class QuadraticFit(_UnivariateFit):
    """y = c0 + c1 * x + c2 * x**2."""

    form = "quadratic"
    n_params = 3

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        self.beta_ = _lstsq(np.vander(z, 3, increasing=True), y)
        b0, b1, b2 = self.beta_
        m, s = self.x_mean_, self.x_scale_
        self.coef_ = np.array(
            [b0 - b1 * m / s + b2 * m * m / (s * s), b1 / s - 2 * b2 * m / (s * s), b2 / (s * s)]
        )

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return np.vander(z, 3, increasing=True) @ self.beta_

    def curve_params(self) -> dict[str, Any]:
        c0, c1, c2 = (float(c) for c in self.coef_)
        return {"equation": "y = c0 + c1 * x + c2 * x^2", "c0": c0, "c1": c1, "c2": c2}


class ExponentialFit(_UnivariateFit):
    """y = a * exp(b * x), by nonlinear least squares (not a log-linear fit, so y may be 0)."""

    form = "exponential"
    n_params = 2

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        start = np.array([float(np.mean(y)) or 1.0, 0.0])
        same_sign = np.all(y > 0) or np.all(y < 0)
        if same_sign:
            sign = 1.0 if y[0] > 0 else -1.0
            slope, log_a = np.polyfit(z, np.log(sign * y), 1)
            start = np.array([sign * np.exp(log_a), slope])
        result = least_squares(lambda p: _exp(p, z) - y, start, method="lm", max_nfev=5000)
        _require_converged(self.form, result)
        self.theta_ = result.x
        big_a, big_b = result.x
        self.b_ = float(big_b / self.x_scale_)
        self.a_ = float(big_a * np.exp(-big_b * self.x_mean_ / self.x_scale_))

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return _exp(self.theta_, z)

    def curve_params(self) -> dict[str, Any]:
        return {"equation": "y = a * exp(b * x)", "a": self.a_, "b": self.b_}


class LogarithmicFit(_UnivariateFit):
    """y = a + b * ln(x); needs positive proxy scores (perplexities, NLLs, bits per byte)."""

    form = "logarithmic"
    n_params = 2

    def _check_domain(self, x: np.ndarray) -> None:
        if np.any(x <= 0):
            raise RBridgeError(
                "logarithmic fit needs positive proxy scores, got minimum "
                f"{float(np.min(x)):.6g}; choose another form"
            )

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return x

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        self.a_, self.b_ = (float(v) for v in _lstsq(np.vander(np.log(z), 2, increasing=True), y))

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return self.a_ + self.b_ * np.log(z)

    def curve_params(self) -> dict[str, Any]:
        return {"equation": "y = a + b * ln(x)", "a": self.a_, "b": self.b_}


class SigmoidFit(_UnivariateFit):
    """y = chance + (ceiling - chance) / (1 + exp(-k * (x - x0))).

    Accuracy cannot go below guessing nor above 1, so the curve is pinned between `chance` (e.g.
    0.25 for 4-way multiple choice, 0 for GSM8K) and `ceiling`; only the slope `k` and midpoint
    `x0` are fitted. For a lower-is-better proxy `k` comes out negative.
    """

    form = "sigmoid"
    n_params = 2

    def __init__(self, chance: float = 0.0, ceiling: float = 1.0) -> None:
        self.chance = chance
        self.ceiling = ceiling

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        if not self.chance < self.ceiling:
            raise RBridgeError(
                f"sigmoid needs chance < ceiling, got chance={self.chance} and "
                f"ceiling={self.ceiling}"
            )
        span = self.ceiling - self.chance
        share = np.clip((y - self.chance) / span, 0.02, 0.98)
        slope, intercept = np.polyfit(z, logit(share), 1)
        if abs(slope) < 1e-6:
            slope = 1e-3
        start = np.array([slope, -intercept / slope])
        result = least_squares(lambda p: self._curve(p, z) - y, start, method="lm", max_nfev=5000)
        _require_converged(self.form, result)
        self.theta_ = result.x
        self.k_ = float(result.x[0] / self.x_scale_)
        self.x0_ = float(self.x_mean_ + result.x[1] * self.x_scale_)

    def _curve(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        return self.chance + (self.ceiling - self.chance) * expit(theta[0] * (z - theta[1]))

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return self._curve(self.theta_, z)

    def curve_params(self) -> dict[str, Any]:
        return {
            "equation": "y = chance + (ceiling - chance) / (1 + exp(-k * (x - x0)))",
            "chance": float(self.chance),
            "ceiling": float(self.ceiling),
            "k": self.k_,
            "x0": self.x0_,
        }


class TwoStepLadder(RegressorMixin, BaseEstimator):
    """Proxy score -> target-scale task loss -> target accuracy (Bhagia et al. 2024's ladder).

    Step 1 maps the proxy score to an intermediate quantity measured on the training targets (e.g.
    the large model's own NLL or bits per byte on the task; it is passed to `fit` as
    `intermediate=`, a per-sample array, so `cross_val_score(..., params={"intermediate": z})`
    splits it with X and y). Step 2 maps that quantity to accuracy, by default with the bounded
    sigmoid. Only X is needed to predict.
    """

    form: ClassVar[str] = "ladder"

    def __init__(
        self, step1: BaseEstimator | None = None, step2: BaseEstimator | None = None
    ) -> None:
        self.step1 = step1
        self.step2 = step2

    def fit(self, X: Any, y: Any, intermediate: Any = None) -> TwoStepLadder:
        X, y = validate_data(self, X, y, y_numeric=True)
        if intermediate is None:
            raise RBridgeError(
                "the two-step ladder needs the intermediate target-scale metric "
                "(fit(X, y, intermediate=...); CLI: --intermediate-metric)"
            )
        z = np.asarray(intermediate, dtype=float).reshape(-1, 1)
        if len(z) != len(y):
            raise RBridgeError(f"intermediate has {len(z)} values for {len(y)} samples")
        self.step1_ = clone(self.step1) if self.step1 is not None else LinearFit()
        self.step2_ = clone(self.step2) if self.step2 is not None else SigmoidFit()
        self.step1_.fit(X, z[:, 0])
        self.step2_.fit(z, y)
        self.x_range_ = self.step1_.x_range_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        z = self.step1_.predict(X)
        with warnings.catch_warnings():
            # The step-2 input is a prediction; only the proxy range (step 1) is the user's.
            warnings.simplefilter("ignore", ExtrapolationWarning)
            return self.step2_.predict(z.reshape(-1, 1))

    def curve_params(self) -> dict[str, Any]:
        return {
            "equation": "y = step2(step1(x))",
            "step1": {"form": self.step1_.form, **self.step1_.curve_params()},
            "step2": {"form": self.step2_.form, **self.step2_.curve_params()},
        }


FORMS: dict[str, type[_UnivariateFit]] = {
    cls.form: cls for cls in (LinearFit, QuadraticFit, ExponentialFit, LogarithmicFit, SigmoidFit)
}


def make_form(name: str, *, chance: float = 0.0, ceiling: float = 1.0) -> BaseEstimator:
    """An unfitted estimator for a form name, as the CLI and the fit file spell it."""
    if name == "sigmoid":
        return SigmoidFit(chance=chance, ceiling=ceiling)
    if name == "ladder":
        return TwoStepLadder(step2=SigmoidFit(chance=chance, ceiling=ceiling))
    if name not in FORMS:
        known = ", ".join([*FORMS, "ladder"])
        raise RBridgeError(f"unknown fit form {name!r}; choose one of {known}")
    return FORMS[name]()


def require_points(form: str, n: int, n_params: int) -> None:
    """Fewer points than parameters cannot determine the curve."""
    if n < n_params:
        raise RBridgeError(
            f"{form} fit needs at least {n_params} points, got {n} (n_samples = {n})"
        )


def warn_if_few_points(form: str, n: int, n_params: int) -> None:
    """Enough points to fit but too few to trust: below POINTS_PER_PARAMETER per parameter."""
    if n < POINTS_PER_PARAMETER * n_params:
        warnings.warn(
            f"{form} fit on only {n} points for {n_params} parameters (fewer than "
            f"{POINTS_PER_PARAMETER} per parameter): its R2 and intervals are fragile",
            TooFewPointsWarning,
            stacklevel=3,
        )


def warn_if_extrapolating(form: str, x: np.ndarray, x_range: tuple[float, float]) -> None:
    low, high = x_range
    slack = 1e-9 * max(1.0, abs(low), abs(high))
    outside = (x < low - slack) | (x > high + slack)
    if np.any(outside):
        values = ", ".join(f"{v:.6g}" for v in x[outside][:5])
        warnings.warn(
            f"{form} fit extrapolates: proxy score(s) {values} outside the fitted "
            f"range [{low:.6g}, {high:.6g}]",
            ExtrapolationWarning,
            stacklevel=3,
        )


def _single_column(X: np.ndarray) -> np.ndarray:
    if X.shape[1] != 1:
        raise ValueError(
            f"a fit form takes one proxy-score column, got {X.shape[1]} (n_features must be 1)"
        )
    return X[:, 0].astype(float)


def _lstsq(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _exp(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    return theta[0] * np.exp(np.clip(theta[1] * z, -700.0, 700.0))


def _require_converged(form: str, result: Any) -> None:
    if result.status <= 0 or not np.all(np.isfinite(result.x)):
        raise RBridgeError(f"{form} fit did not converge ({result.message}); try another form")
