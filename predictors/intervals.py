"""Bootstrap intervals for predicted accuracy.

Pairs bootstrap: resample (proxy score, accuracy) points with replacement, refit, predict. Two
kinds of interval come from the same refits:
- "confidence": where the fitted curve could be (uncertainty of the fit only);
- "prediction": where one new model's accuracy could fall, adding to each refit's prediction a
  residual drawn from that refit's own residuals (the scatter of real models around the curve);
  one residual per resample, shared by all new points, which leaves each point's interval the
  same and keeps a band drawn along a curve smooth.
Optionally the new proxy scores themselves are noisy: with `x_new_stderr` each draw also shifts the
score by a normal draw with that standard error (lm-eval's `<metric>_stderr`).
With `bounds` (an accuracy's [0, 1]) both intervals are clipped to that range.

Resamples on which a form cannot be fitted (e.g. all drawn points share one proxy score) are
skipped and counted; `n_failed` is reported so a mostly-failed bootstrap is not mistaken for a
tight one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from tqdm import tqdm

from predictors.choices import KINDS
from predictors.estimators import ExtrapolationWarning, TooFewPointsWarning
from rbridge_tasks.errors import RBridgeError


@dataclass
class BootstrapResult:
    """Per-draw curve values and residual draws (n_ok x n_new), from which both intervals come."""

    curve: np.ndarray
    noise: np.ndarray
    alpha: float
    n_failed: int
    bounds: tuple[float, float] | None = None  # a rate's range: intervals never leave it

    def draws(self, kind: str) -> np.ndarray:
        if kind not in KINDS:
            raise RBridgeError(f"interval kind must be one of {KINDS}, got {kind!r}")
        return self.curve + self.noise if kind == "prediction" else self.curve

    def interval(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Percentile (1 - alpha) interval per new point."""
        lower, upper = np.quantile(self.draws(kind), [self.alpha / 2, 1 - self.alpha / 2], axis=0)
        if self.bounds is not None:
            lower, upper = np.clip(lower, *self.bounds), np.clip(upper, *self.bounds)
        return lower, upper


def bootstrap_predictions(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    X_new: Any,
    *,
    n_boot: int = 1000,
    alpha: float = 0.1,
    random_state: int = 0,
    fit_params: dict[str, Any] | None = None,
    x_new_stderr: Any = None,
    bounds: tuple[float, float] | None = None,
    progress: bool = False,
) -> BootstrapResult:
    """Refit on `n_boot` pairs resamples and predict at X_new (see the module docstring)."""
    if not 0 < alpha < 1:
        raise RBridgeError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 10:
        raise RBridgeError(f"a bootstrap needs at least 10 resamples, got {n_boot}")
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    X_new = np.asarray(X_new, dtype=float).reshape(-1, X.shape[1])
    noise_sd = (
        np.zeros(len(X_new))
        if x_new_stderr is None
        else np.nan_to_num(np.asarray(x_new_stderr, dtype=float), nan=0.0)
    )
    rng = np.random.default_rng(random_state)
    n = len(y)
    curves, noises, failed = [], [], 0
    for _ in tqdm(
        range(n_boot), desc="bootstrap", disable=not progress, mininterval=1.0, leave=False
    ):
        index = rng.integers(0, n, n)
        params = {k: np.asarray(v)[index] for k, v in (fit_params or {}).items()}
        shifted = X_new + (rng.normal(0.0, 1.0, len(X_new)) * noise_sd)[:, None]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TooFewPointsWarning)
                warnings.simplefilter("ignore", ExtrapolationWarning)
                fitted = clone(estimator).fit(X[index], y[index], **params)
                curve = fitted.predict(shifted)
                residuals = y[index] - fitted.predict(X[index])
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
            continue
        curves.append(curve)
        noises.append(np.full(len(curve), rng.choice(residuals)))
    if len(curves) < max(10, n_boot // 2):
        raise RBridgeError(
            f"bootstrap failed on {failed} of {n_boot} resamples: the fit is too "
            "unstable on these points for an interval (try a simpler form)"
        )
    return BootstrapResult(
        curve=np.vstack(curves),
        noise=np.vstack(noises),
        alpha=alpha,
        n_failed=failed,
        bounds=bounds,
    )
