"""Bootstrap intervals for predicted accuracy, computed once per fit and stored with it.

Method ("pairs bootstrap with held-out residuals, percentile"):
- confidence (where the fitted curve could be): the chosen form refitted on `n_boot` pairs
  resamples of the (proxy score, accuracy) points, each refit kept as its curve's parameters;
- prediction (where one new model's accuracy could fall): each refit's curve plus a residual drawn
  from the chosen form's cross-validated residuals (every repeat's held-out errors), i.e. the
  scatter of unseen recipes around a curve fitted without them; in-sample residuals understate it,
  most for the flexible forms and the small ladders where it matters.
Two independent residuals are drawn per refit. The first gives every run its interval, so one run
has the same interval in `fit`, `leaderboard` and `gate`; the second is the other run of a gate's
pair: two recipes each scatter around the curve, and that does not cancel in their difference.
With `bounds` (an accuracy's [0, 1]) every draw is clipped to the range, so each interval, and the
difference of two draws, is a possible value.

What is stored with the fit (`record`): the parameters of every successful refit, the residual
draws, seed, method, number of resamples and of failed refits. Resamples whose fit fails (e.g.
every drawn point shares one proxy score) are counted; when more than alpha/2 of them fail (5% for
a 90% interval) the interval is refused, as the failed resamples alone could be a whole tail.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from tqdm import tqdm

from predictors.choices import KINDS
from predictors.fitting.estimators import ExtrapolationWarning, TooFewPointsWarning, curve_values
from predictors.fitting.evaluation import clip
from rbridge_tasks.core.errors import RBridgeError

METHOD = "pairs bootstrap of the fit + cross-validated residuals, percentile"


@dataclass
class CurveDraws:
    """The refits of one fit's bootstrap, from which every interval of that fit is read."""

    params: dict[str, Any]  # curve_params() with each number an (n_ok, 1) array of refits
    residuals: np.ndarray  # (n_ok, 2) independent held-out residual draws per refit
    kind: str
    alpha: float
    seed: int
    n_boot: int
    n_failed: int
    bounds: tuple[float, float] | None

    @property
    def n_ok(self) -> int:
        """Refits that succeeded: the number of draws every interval is read from."""
        return len(self.residuals)

    def values(self, x: Any, residual: int | list[int] = 0) -> np.ndarray:
        """(n_ok, n_x) draws of the target at x; x is (n_x,) or (n_ok, n_x) (perturbed scores),
        `residual` the residual column of each x (0: a run's own; 1: the other of a pair)."""
        curve = curve_values(self.params, x)
        if self.kind == "prediction":
            columns = [residual] if isinstance(residual, int) else list(residual)
            curve = curve + self.residuals[:, columns]
        return clip(curve, self.bounds)

    def interval(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Percentile (1 - alpha) interval at each x."""
        return quantiles(self.values(np.asarray(x, dtype=float)), self.alpha)

    def perturbed(self, x: Any, stderr: Any, column: int | list[int] = 0) -> np.ndarray:
        """(n_ok, n_x) proxy scores moved by normal noise of their lm-eval stderr. Two fixed
        columns of standard normal draws, like the residuals: a run's own (0), whatever else is
        asked with it, so its noise draws are the same in every command; and the other of a
        gate's pair (1)."""
        x = np.asarray(x, dtype=float)
        z = np.random.default_rng([self.seed, 2]).standard_normal((self.n_ok, 2))
        columns = [column] * len(x) if isinstance(column, int) else list(column)
        return x + z[:, columns] * np.nan_to_num(np.asarray(stderr, dtype=float), nan=0.0)

    def describe(self) -> dict[str, Any]:
        """How the intervals were made, for reports: method, seed and the failed share."""
        return {
            "method": METHOD,
            "kind": self.kind,
            "alpha": self.alpha,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "n_failed": self.n_failed,
            "failed_share": self.n_failed / self.n_boot,
            "max_failed_share": self.alpha / 2,
        }

    def record(self) -> dict[str, Any]:
        """`describe` plus every draw, as the fit file stores them, so a reloaded fit gives the
        same intervals without refitting."""
        names = [name for name, _ in _leaves(self.params)]
        return {
            **self.describe(),
            "names": names,
            "values": np.hstack([value for _, value in _leaves(self.params)]).tolist(),
            "residuals": self.residuals.tolist(),
        }

    @classmethod
    def from_record(
        cls, record: dict[str, Any], template: dict[str, Any], bounds: tuple[float, float] | None
    ) -> CurveDraws:
        """The draws a fit file stored (`record`); `template` is the fitted curve's
        `curve_params()`, whose numbers the stored columns replace."""
        values = np.asarray(record["values"], dtype=float).reshape(-1, len(record["names"]))
        return cls(
            params=_with_leaves(template, record["names"], values),
            residuals=np.asarray(record["residuals"], dtype=float).reshape(-1, 2),
            kind=record["kind"],
            alpha=float(record["alpha"]),
            seed=int(record["seed"]),
            n_boot=int(record["n_boot"]),
            n_failed=int(record["n_failed"]),
            bounds=bounds,
        )


def bootstrap_curves(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    residuals: Any,
    *,
    n_boot: int = 1000,
    alpha: float = 0.1,
    kind: str = "prediction",
    random_state: int = 0,
    fit_params: dict[str, Any] | None = None,
    bounds: tuple[float, float] | None = None,
    progress: bool = False,
) -> CurveDraws:
    """Refit on `n_boot` pairs resamples, keep each refit's curve (see the module docstring);
    `residuals` are the held-out residuals the prediction interval draws from."""
    if not 0 < alpha < 1:
        raise RBridgeError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 10:
        raise RBridgeError(f"a bootstrap needs at least 10 resamples, got {n_boot}")
    if kind not in KINDS:
        raise RBridgeError(f"interval kind must be one of {KINDS}, got {kind!r}")
    pool = np.asarray(residuals, dtype=float)
    pool = pool[np.isfinite(pool)]
    if kind == "prediction" and not pool.size:
        raise RBridgeError(
            "a prediction interval needs held-out residuals (cross-validation) to measure "
            "how far unseen points scatter around the curve"
        )
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(random_state)
    n = len(y)
    index = rng.integers(0, n, (n_boot, n))
    picks = rng.choice(pool, (n_boot, 2)) if pool.size else np.zeros((n_boot, 2))
    template: dict[str, Any] | None = None
    rows, kept = [], []
    for b in tqdm(
        range(n_boot), desc="bootstrap", disable=not progress, mininterval=1.0, leave=False
    ):
        params = {k: np.asarray(v)[index[b]] for k, v in (fit_params or {}).items()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TooFewPointsWarning)
                warnings.simplefilter("ignore", ExtrapolationWarning)
                curve = clone(estimator).fit(X[index[b]], y[index[b]], **params).curve_params()
        except (ValueError, np.linalg.LinAlgError):  # RBridgeError is a ValueError
            continue
        numbers = [float(v) for _, v in _leaves(curve)]
        if not np.all(np.isfinite(numbers)):
            continue
        template = template or curve
        rows.append(numbers)
        kept.append(b)
    failed = n_boot - len(kept)
    if failed > alpha / 2 * n_boot or template is None:
        form = getattr(estimator, "form", type(estimator).__name__)
        raise RBridgeError(
            f"the bootstrap of the {form} fit failed on {failed} of {n_boot} resamples "
            f"({failed / n_boot:.1%}, more than alpha/2 = {alpha / 2:.1%}): the failed "
            "resamples could hold a whole tail of the interval; choose a form with fewer "
            "parameters (--form) or add points"
        )
    names = [name for name, _ in _leaves(template)]
    return CurveDraws(
        params=_with_leaves(template, names, np.asarray(rows)),
        residuals=picks[kept],
        kind=kind,
        alpha=alpha,
        seed=random_state,
        n_boot=n_boot,
        n_failed=failed,
        bounds=bounds,
    )


def quantiles(draws: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The (lower, upper) percentile bounds of a (1 - alpha) interval, over the draws axis."""
    lower, upper = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    return lower, upper


def _leaves(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """The numbers of a curve_params() dict by dotted name ('step1.slope'), in a fixed order."""
    out: list[tuple[str, Any]] = []
    for name, value in params.items():
        if isinstance(value, dict):
            out += _leaves(value, f"{prefix}{name}.")
        elif not isinstance(value, (str, bool)):
            out.append((f"{prefix}{name}", value))
    return out


def _with_leaves(template: dict[str, Any], names: list[str], values: np.ndarray) -> dict[str, Any]:
    """`template` with the number at each dotted name replaced by a column of `values`."""
    params = copy.deepcopy(template)
    for j, name in enumerate(names):
        *path, leaf = name.split(".")
        node = params
        for part in path:
            node = node[part]
        node[leaf] = values[:, j : j + 1]
    return params
