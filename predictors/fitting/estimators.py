"""Fit forms mapping one proxy score to a large-model accuracy, as scikit-learn regressors.

The paper's four forms (linear, quadratic, exponential, logarithmic) plus a bounded sigmoid with a
chance floor and a two-step ladder. Every form is univariate: X has exactly one column, the proxy
score, so the estimators drop into `cross_val_score`, `Pipeline` and `clone` like any regressor.

Every form but the quadratic is monotone. An unconstrained quadratic can turn inside the data, so
that a worse proxy score predicts a better accuracy; `QuadraticFit(monotone=True)` (the default)
is the least-squares quadratic among those that keep one direction over the fitted range, and
`monotone=False` is the paper's free quadratic (`turns_at()` says where it turns).

Nonlinear forms are fitted on the standardised score z = (x - mean) / std: the raw scores can be
perplexities in the millions or NLLs near 1, and one parameterisation must work for both. The
coefficients are also reported in original units (`curve_params`).

Parameters follow scikit-learn's rules: `__init__(self, *, ...)` stores them unchanged and checks
nothing (as `clone` and `set_params` require), and `fit` checks them first, so a bad one raises
one `RBridgeError` (a ValueError) naming the parameter before any data is read.

Warnings, not errors, for fits that are legal but untrustworthy:
- `TooFewPointsWarning` when there are fewer than `POINTS_PER_PARAMETER` points per parameter;
- `ExtrapolationWarning` when `predict` is asked about scores outside the fitted range.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from rbridge_tasks.core.errors import RBridgeError

POINTS_PER_PARAMETER = 3


class ExtrapolationWarning(UserWarning):
    """A prediction was asked for a proxy score outside the range the fit saw."""


class TooFewPointsWarning(UserWarning):
    """The fit has so few points that its R2 says little about its predictions."""


class FitWarning(UserWarning):
    """A fit or a use of it that runs but must not be taken at face value: no skill out of
    sample, failed bootstrap refits, a curve that turns, a target beyond the fit's, decisions
    that differ within blocks."""


class _UnivariateFit(RegressorMixin, BaseEstimator):
    """Shared validation, standardisation and range bookkeeping of the one-column forms."""

    form: ClassVar[str] = ""
    n_params: ClassVar[int] = 2

    def fit(self, X: Any, y: Any) -> _UnivariateFit:
        """Fit the curve to one column of proxy scores X and the targets y.

        Raises
        ------
        RBridgeError
            A bad parameter, fewer points (or distinct scores) than the form has parameters,
            scores outside the form's domain, or a nonlinear fit that does not converge.
        ValueError
            X with more than one column, or NaN/infinite values (scikit-learn's checks).
        """
        self._check_params()
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
        """The curve at each proxy score; warns `ExtrapolationWarning` outside the fitted range."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        x = X[:, 0].astype(float)
        self._check_domain(x)
        warn_if_extrapolating(self.form, x, self.x_range_)
        return self._predict_standardised(self._standardise(x))

    def _check_params(self) -> None:
        """Forms with parameters refuse bad values here, before the data is looked at."""

    def _check_domain(self, x: np.ndarray) -> None:
        """Forms defined only on part of the real line refuse other scores here."""

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean_) / self.x_scale_

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def turns_at(self) -> float | None:
        """Where the curve changes direction inside the fitted range; None for a monotone fit."""
        return None

    def curve_params(self) -> dict[str, Any]:
        """The fitted curve in original units, for reports, reloading checks and the stored
        bootstrap (`curve_values` evaluates it)."""
        raise NotImplementedError


class LinearFit(_UnivariateFit):
    """y = intercept + slope * x: the paper's first form, and the ladder's default step 1.

    Attributes
    ----------
    x_range_ : tuple of float
        The (min, max) proxy score fitted; `predict` warns outside it.
    x_mean_, x_scale_ : float
        The standardisation of the scores (fits run on z-scores; see the module docstring).
    intercept_, slope_ : float
        The line in original units.
    """

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
    """y = c0 + c1 * x + c2 * x**2, by default kept monotone over the fitted range.

    When the free least-squares parabola has its vertex strictly inside the fitted range, the
    monotone optimum lies on the boundary of the monotone set: a parabola with its vertex at one
    end of the range, y = a + c * (x - end)**2 (monotone there for either sign of c). Both ends
    are fitted by least squares and the better one kept; that is the exact constrained optimum.

    Parameters
    ----------
    monotone : bool, default True
        Keep one direction over the fitted range; False is the paper's free quadratic.

    Attributes
    ----------
    x_range_ : tuple of float
        The (min, max) proxy score fitted; `predict` warns outside it.
    x_mean_, x_scale_ : float
        The standardisation of the scores (fits run on z-scores; see the module docstring).
    coef_ : numpy.ndarray
        (c0, c1, c2) in original units.
    """

    form = "quadratic"
    n_params = 3

    def __init__(self, *, monotone: bool = True) -> None:
        self.monotone = monotone

    def _check_params(self) -> None:
        require_bool(type(self).__name__, "monotone", self.monotone)

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
        self.beta_ = _lstsq(np.vander(z, 3, increasing=True), y)
        low, high = float(z.min()), float(z.max())
        if self.monotone and _vertex_inside(self.beta_, low, high):
            self.beta_ = min(
                (_vertex_at(end, z, y) for end in (low, high)),
                key=lambda beta: float(np.sum((np.vander(z, 3, increasing=True) @ beta - y) ** 2)),
            )
        b0, b1, b2 = self.beta_
        m, s = self.x_mean_, self.x_scale_
        self.coef_ = np.array(
            [b0 - b1 * m / s + b2 * m * m / (s * s), b1 / s - 2 * b2 * m / (s * s), b2 / (s * s)]
        )

    def _predict_standardised(self, z: np.ndarray) -> np.ndarray:
        return np.vander(z, 3, increasing=True) @ self.beta_

    def turns_at(self) -> float | None:
        check_is_fitted(self)
        low, high = (self._standardise(np.array(v)) for v in self.x_range_)
        if not _vertex_inside(self.beta_, float(low), float(high)):
            return None
        return float(self.x_mean_ - self.beta_[1] / (2 * self.beta_[2]) * self.x_scale_)

    def curve_params(self) -> dict[str, Any]:
        c0, c1, c2 = (float(c) for c in self.coef_)
        return {"equation": "y = c0 + c1 * x + c2 * x^2", "c0": c0, "c1": c1, "c2": c2}


class ExponentialFit(_UnivariateFit):
    """y = a * exp(b * x), by nonlinear least squares (not a log-linear fit, so y may be 0).

    Attributes
    ----------
    x_range_ : tuple of float
        The (min, max) proxy score fitted; `predict` warns outside it.
    x_mean_, x_scale_ : float
        The standardisation of the scores (fits run on z-scores; see the module docstring).
    a_, b_ : float
        The curve in original units.
    """

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
    """y = a + b * ln(x); needs positive proxy scores (perplexities, NLLs, bits per byte).

    Fitted on the raw scores (ln already tames their scale); a non-positive score raises
    `RBridgeError` in `fit` and `predict`.

    Attributes
    ----------
    x_range_ : tuple of float
        The (min, max) proxy score fitted; `predict` warns outside it.
    x_mean_, x_scale_ : float
        Recorded as for every form, unused here.
    a_, b_ : float
        The curve.
    """

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

    Parameters
    ----------
    chance : float, default 0.0
        The floor: the accuracy of guessing.
    ceiling : float, default 1.0
        The top; 100 for accuracies in percent. Must exceed `chance`.

    Attributes
    ----------
    x_range_ : tuple of float
        The (min, max) proxy score fitted; `predict` warns outside it.
    x_mean_, x_scale_ : float
        The standardisation of the scores (fits run on z-scores; see the module docstring).
    k_, x0_ : float
        Slope and midpoint in original units.
    """

    form = "sigmoid"
    n_params = 2

    def __init__(self, *, chance: float = 0.0, ceiling: float = 1.0) -> None:
        self.chance = chance
        self.ceiling = ceiling

    def _check_params(self) -> None:
        require_chance_below_ceiling(type(self).__name__, self.chance, self.ceiling)

    def _fit_standardised(self, z: np.ndarray, y: np.ndarray) -> None:
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

    Parameters
    ----------
    step1 : regressor or None, default None
        Proxy score -> intermediate; None means `LinearFit()`. Cloned in `fit`, never changed.
    step2 : regressor or None, default None
        Intermediate -> accuracy; None means `SigmoidFit()`.

    Attributes
    ----------
    step1_, step2_ : regressor
        The fitted clones.
    x_range_ : tuple of float
        Step 1's fitted proxy range.
    """

    form: ClassVar[str] = "ladder"

    def __init__(
        self, *, step1: BaseEstimator | None = None, step2: BaseEstimator | None = None
    ) -> None:
        self.step1 = step1
        self.step2 = step2

    def fit(self, X: Any, y: Any, intermediate: Any = None) -> TwoStepLadder:
        """Fit step 1 (X -> intermediate) and step 2 (intermediate -> y) on the same samples.

        Parameters
        ----------
        X : array of shape (n_samples, 1)
            The proxy scores.
        y : array of shape (n_samples,)
            The large model's accuracies.
        intermediate : array of shape (n_samples,)
            The target-scale metric of the same samples; required, and split with X and y by
            `cross_val_score(..., params={"intermediate": z})`.

        Raises
        ------
        RBridgeError
            `step1`/`step2` not regressors, `intermediate` missing or of another length, or
            either step's own fit errors.
        """
        for name in ("step1", "step2"):
            require_regressor_or_none(name, getattr(self, name))
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
        """Step 2 of step 1's prediction; only step 1 warns about extrapolation."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        z = self.step1_.predict(X)
        with warnings.catch_warnings():
            # The step-2 input is a prediction; only the proxy range (step 1) is the user's.
            warnings.simplefilter("ignore", ExtrapolationWarning)
            return self.step2_.predict(z.reshape(-1, 1))

    def turns_at(self) -> float | None:
        """Where step 1 turns: step 2 is monotone, so only step 1 can reverse the direction."""
        return self.step1_.turns_at()

    def curve_params(self) -> dict[str, Any]:
        """Both steps' curves, nested under `step1`/`step2` (`curve_values` composes them)."""
        return {
            "equation": "y = step2(step1(x))",
            "step1": {"form": self.step1_.form, **self.step1_.curve_params()},
            "step2": {"form": self.step2_.form, **self.step2_.curve_params()},
        }


FORMS: dict[str, type[_UnivariateFit]] = {
    cls.form: cls for cls in (LinearFit, QuadraticFit, ExponentialFit, LogarithmicFit, SigmoidFit)
}


def make_form(
    name: str, *, chance: float = 0.0, ceiling: float = 1.0, monotone: bool = True
) -> BaseEstimator:
    """An unfitted estimator for a form name, as the CLI and the fit file spell it."""
    if name == "sigmoid":
        return SigmoidFit(chance=chance, ceiling=ceiling)
    if name == "quadratic":
        return QuadraticFit(monotone=monotone)
    if name == "ladder":
        return TwoStepLadder(step2=SigmoidFit(chance=chance, ceiling=ceiling))
    if name not in FORMS:
        known = ", ".join([*FORMS, "ladder"])
        raise RBridgeError(f"unknown fit form {name!r}; choose one of {known}")
    return FORMS[name]()


def curve_values(params: dict[str, Any], x: Any) -> np.ndarray:
    """The curve that `curve_params()` describes, at x, without the estimator.

    The stored bootstrap of a fit is one parameter set per refit; with each parameter an array
    of shape (n_draws, 1) and x of shape (n_points,) or (n_draws, n_points) this evaluates every
    refit at once. `tests` check it against each estimator's own `predict`.
    """
    x = np.asarray(x, dtype=float)
    equation = params["equation"]
    if equation == "y = step2(step1(x))":
        return curve_values(params["step2"], curve_values(params["step1"], x))
    if equation == "y = intercept + slope * x":
        return params["intercept"] + params["slope"] * x
    if equation == "y = c0 + c1 * x + c2 * x^2":
        return params["c0"] + (params["c1"] + params["c2"] * x) * x
    if equation == "y = a * exp(b * x)":
        return params["a"] * np.exp(np.clip(params["b"] * x, -700.0, 700.0))
    if equation == "y = a + b * ln(x)":
        with np.errstate(invalid="ignore", divide="ignore"):
            return params["a"] + params["b"] * np.log(x)
    if equation == "y = chance + (ceiling - chance) / (1 + exp(-k * (x - x0)))":
        chance, ceiling = params["chance"], params["ceiling"]
        return chance + (ceiling - chance) * expit(params["k"] * (x - params["x0"]))
    raise RBridgeError(f"unknown curve equation {equation!r}")


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
    """A curve is only evidence inside the scores it was fitted on; say when it is asked beyond."""
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


def require_bool(owner: str, name: str, value: Any) -> None:
    """A flag must be a real bool: any truthy string (even "False") would otherwise switch it on."""
    if not isinstance(value, (bool, np.bool_)):
        raise RBridgeError(f"{owner}: {name} must be True or False, got {value!r}")


def require_finite(owner: str, name: str, value: Any) -> float:
    """A number parameter must be a finite real (not a bool, string or NaN); returns it as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real) or not np.isfinite(value):
        raise RBridgeError(f"{owner}: {name} must be a finite number, got {value!r}")
    return float(value)


def require_int(owner: str, name: str, value: Any, *, at_least: int | None = None) -> None:
    """An integer parameter (a count or a seed), optionally with a lower bound."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise RBridgeError(f"{owner}: {name} must be an integer, got {value!r}")
    if at_least is not None and value < at_least:
        raise RBridgeError(f"{owner}: {name} must be at least {at_least}, got {value!r}")


def require_chance_below_ceiling(owner: str, chance: Any, ceiling: Any) -> None:
    """The sigmoid's floor and ceiling must be finite numbers with room between them."""
    low = require_finite(owner, "chance", chance)
    high = require_finite(owner, "ceiling", ceiling)
    if not low < high:
        raise RBridgeError(
            f"sigmoid needs chance < ceiling, got chance={chance} and ceiling={ceiling}"
        )


def require_regressor_or_none(name: str, value: Any) -> None:
    """A step of the ladder must be cloneable and fittable, or None for its default."""
    if value is not None and (
        isinstance(value, type)  # the class, not an instance: LinearFit for LinearFit()
        or not all(
            callable(getattr(value, method, None)) for method in ("fit", "predict", "get_params")
        )
    ):
        raise RBridgeError(
            f"TwoStepLadder: {name} must be None or a scikit-learn regressor (with fit, "
            f"predict and get_params), got {value!r}"
        )


def _single_column(X: np.ndarray) -> np.ndarray:
    if X.shape[1] != 1:
        raise ValueError(
            f"a fit form takes one proxy-score column, got {X.shape[1]} (n_features must be 1)"
        )
    return X[:, 0].astype(float)


def _lstsq(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _vertex_inside(beta: np.ndarray, low: float, high: float) -> bool:
    """Does b0 + b1 z + b2 z^2 turn strictly inside (low, high)? (the slope changes sign)"""
    slack = 1e-9 * (high - low)
    slope_low, slope_high = beta[1] + 2 * beta[2] * low, beta[1] + 2 * beta[2] * high
    return bool(
        slope_low * slope_high < 0 and low + slack < -beta[1] / (2 * beta[2]) < high - slack
    )


def _vertex_at(end: float, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares y = a + c (z - end)^2, as (b0, b1, b2) of b0 + b1 z + b2 z^2."""
    a, c = _lstsq(np.column_stack([np.ones_like(z), (z - end) ** 2]), y)
    return np.array([a + c * end * end, -2 * c * end, c])


def _exp(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    return theta[0] * np.exp(np.clip(theta[1] * z, -700.0, 700.0))


def _require_converged(form: str, result: Any) -> None:
    if result.status <= 0 or not np.all(np.isfinite(result.x)):
        raise RBridgeError(f"{form} fit did not converge ({result.message}); try another form")
