"""Independent reference implementations of the fit forms and of the repeated cross-validation,
for the tests to check `predictors` against: numpy's polyfit, scipy's curve_fit and SLSQP, and
sklearn's KFold, none of the package's own fitting code.

- linear, quadratic, logarithmic: `np.polyfit` (on ln x for the logarithm);
- the monotone quadratic: SLSQP under "slope at both ends of the fitted range >= 0" (or both
  <= 0), the better of the two directions; the free quadratic when it does not turn;
- exponential a * exp(b x) and the sigmoid chance + (ceiling - chance) * expit(k (x - x0)):
  `curve_fit` on the standardised score, started from log-linear and logit-linear fits;
- CV: 5-fold KFold shuffled with seeds 0..repeats-1, held-out predictions clipped to the target's
  range, pooled R2 per repeat, averaged;
- the raw tables read with the csv module (`last_row`), and a curve's direction checked on its
  values (`assert_monotone`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit, minimize
from scipy.special import expit, logit
from sklearn.model_selection import KFold

Predictor = Callable[[np.ndarray], np.ndarray]


def monotone_quadratic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(c0, c1, c2) of the least-squares parabola with one direction over [min x, max x]."""
    m, s = x.mean(), x.std()
    z = (x - m) / s
    low, high = z.min(), z.max()
    free = np.polyfit(z, y, 2)[::-1]
    if not (free[1] + 2 * free[2] * low) * (free[1] + 2 * free[2] * high) < 0:
        b0, b1, b2 = free
    else:

        def sse(b):
            return np.sum((b[0] + b[1] * z + b[2] * z * z - y) ** 2)

        best = None
        for sign in (1.0, -1.0):
            constraints = [
                {"type": "ineq", "fun": lambda b, e=e, sign=sign: sign * (b[1] + 2 * b[2] * e)}
                for e in (low, high)
            ]
            start = np.array([y.mean(), sign * 0.01, 0.0])
            result = minimize(sse, start, constraints=constraints, method="SLSQP", tol=1e-14)
            if best is None or result.fun < best.fun:
                best = result
        b0, b1, b2 = best.x
    return np.array([b0 - b1 * m / s + b2 * m * m / s**2, b1 / s - 2 * b2 * m / s**2, b2 / s**2])


def fit_form(
    form: str, x: np.ndarray, y: np.ndarray, chance: float = 0.0, ceiling: float = 1.0
) -> Predictor:
    if form == "linear":
        coef = np.polyfit(x, y, 1)
        return lambda v: np.polyval(coef, v)
    if form == "logarithmic":
        coef = np.polyfit(np.log(x), y, 1)
        return lambda v: np.polyval(coef, np.log(v))
    if form == "quadratic":
        c0, c1, c2 = monotone_quadratic(x, y)
        return lambda v: c0 + c1 * v + c2 * v * v
    m, s = x.mean(), x.std()
    z = (x - m) / s
    if form == "exponential":
        start = (np.mean(y), 0.0)
        if np.all(y > 0):
            slope, log_a = np.polyfit(z, np.log(y), 1)
            start = (np.exp(log_a), slope)
        (a, b), _ = curve_fit(lambda t, a, b: a * np.exp(b * t), z, y, p0=start, maxfev=20000)
        return lambda v: a * np.exp(b * (v - m) / s)
    if form == "sigmoid":
        share = np.clip((y - chance) / (ceiling - chance), 0.02, 0.98)
        slope, intercept = np.polyfit(z, logit(share), 1)

        def curve(t, k, t0):
            return chance + (ceiling - chance) * expit(k * (t - t0))

        (k, t0), _ = curve_fit(curve, z, y, p0=(slope, -intercept / slope), maxfev=20000)
        return lambda v: curve((v - m) / s, k, t0)
    raise ValueError(form)


def held_out(
    form: str, x: np.ndarray, y: np.ndarray, seed: int, bounds=(0.0, 1.0), folds: int = 5
) -> np.ndarray:
    predictions = np.empty(len(x))
    for train, test in KFold(min(folds, len(x)), shuffle=True, random_state=seed).split(x):
        predictions[test] = fit_form(form, x[train], y[train])(x[test])
    return predictions if bounds is None else np.clip(predictions, *bounds)


def r2(y: np.ndarray, predictions: np.ndarray) -> float:
    return float(1 - np.sum((y - predictions) ** 2) / np.sum((y - y.mean()) ** 2))


def repeated_cv(
    form: str, x: np.ndarray, y: np.ndarray, repeats: int = 5, bounds=(0.0, 1.0)
) -> dict[str, float]:
    """Mean pooled held-out R2 and MAE over seeds 0..repeats-1 (one split for leave-one-out)."""
    seeds = range(1 if len(x) <= 5 else repeats)
    runs = [held_out(form, x, y, seed, bounds) for seed in seeds]
    return {
        "r2": float(np.mean([r2(y, p) for p in runs])),
        "mae": float(np.mean([np.mean(np.abs(y - p)) for p in runs])),
        "residuals": np.concatenate([y - p for p in runs]),
    }


def repeated_train_r2(form: str, x: np.ndarray, y: np.ndarray, repeats: int = 5) -> float:
    """The paper's criterion, repeated: in-sample R2 on each training fold, mean over all."""
    scores = []
    for seed in range(1 if len(x) <= 5 else repeats):
        for train, _ in KFold(min(5, len(x)), shuffle=True, random_state=seed).split(x):
            scores.append(r2(y[train], fit_form(form, x[train], y[train])(x[train])))
    return float(np.mean(scores))


def last_row(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))[-1]


def assert_monotone(values) -> None:
    steps = np.diff(np.asarray(values, dtype=float))
    assert np.all(steps >= -1e-12) or np.all(steps <= 1e-12)
