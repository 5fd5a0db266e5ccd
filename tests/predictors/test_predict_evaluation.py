"""CV protocols and bootstrap intervals against sklearn's splitters and analytic OLS intervals.

Tolerances: 1e-10 where the same numbers are computed two ways; the bootstrap interval widths
must be within 25% of the analytic t-intervals (1000 resamples of 40 homoscedastic points: the
pairs bootstrap is consistent there, the 5-fold held-out residuals of 40 points scatter about as
the noise does, and the Monte Carlo error on a 90% width is a few %).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import KFold, LeaveOneGroupOut, cross_val_predict, cross_validate

from predictors.fitting.estimators import LinearFit, LogarithmicFit, QuadraticFit
from predictors.fitting.evaluation import (
    cross_validate_fit,
    extrapolation_split,
    leave_one_group_out,
    repeated_cross_validation,
    zero_shot_transfer,
)
from predictors.fitting.intervals import bootstrap_curves
from rbridge_tasks.core.errors import RBridgeError

RNG = np.random.default_rng(11)
X = np.linspace(1.0, 4.0, 20).reshape(-1, 1)
Y = 0.8 - 0.15 * X[:, 0] + RNG.normal(0, 0.02, 20)
GROUPS = np.array(["web"] * 7 + ["code"] * 7 + ["books"] * 6)

pytestmark = pytest.mark.filterwarnings(
    "ignore::predictors.fitting.estimators.ExtrapolationWarning"
)


def test_kfold_numbers_match_sklearn():
    result = cross_validate_fit(LinearFit(), X, Y, folds=5, random_state=0)
    cv = KFold(5, shuffle=True, random_state=0)
    pooled = cross_val_predict(LinearFit(), X, Y, cv=cv)
    assert result.predictions == pytest.approx(pooled, rel=1e-10)
    assert result.r2 == pytest.approx(r2_score(Y, pooled), rel=1e-10)
    assert result.mae == pytest.approx(mean_absolute_error(Y, pooled), rel=1e-10)
    scores = cross_validate(LinearFit(), X, Y, cv=cv, scoring="r2", return_train_score=True)
    assert result.r2_fold_mean == pytest.approx(np.mean(scores["test_score"]), rel=1e-10)
    assert result.train_r2 == pytest.approx(list(scores["train_score"]), rel=1e-10)
    assert result.n_folds == 5 and not result.notes


def test_kfold_falls_back_to_leave_one_out_with_a_note():
    result = cross_validate_fit(LinearFit(), X[:4], Y[:4], folds=5)
    assert result.n_folds == 4 and "leave-one-out" in result.notes[0]
    with pytest.raises(RBridgeError, match="at least 3 joined points, got 2"):
        cross_validate_fit(LinearFit(), X[:2], Y[:2])


def test_leave_one_group_out_matches_sklearn():
    result = leave_one_group_out(LinearFit(), X, Y, GROUPS)
    splitter = LeaveOneGroupOut()
    pooled = cross_val_predict(LinearFit(), X, Y, cv=splitter, groups=GROUPS)
    assert result["predictions"] == pytest.approx(pooled, rel=1e-10)
    assert result["r2"] == pytest.approx(r2_score(Y, pooled), rel=1e-10)
    for row in result["groups"]:
        mask = row["group"] == GROUPS
        assert row["n"] == mask.sum()
        assert row["mae"] == pytest.approx(mean_absolute_error(Y[mask], pooled[mask]))
    with pytest.raises(RBridgeError, match="at least 2 groups"):
        leave_one_group_out(LinearFit(), X, Y, ["one"] * 20)


def test_extrapolation_split_holds_out_the_best_proxy_scores():
    x = np.arange(1.0, 11.0).reshape(-1, 1)
    y = 2.0 * x[:, 0]
    better_high = extrapolation_split(LinearFit(), x, y, proxy_higher_is_better=True, fraction=0.2)
    assert sorted(better_high["test_index"]) == [8, 9]
    assert better_high["predictions"] == pytest.approx([18.0, 20.0])
    assert better_high["mae"] == pytest.approx(0.0, abs=1e-12)
    better_low = extrapolation_split(LinearFit(), x, y, proxy_higher_is_better=False)
    assert sorted(better_low["test_index"]) == [0, 1]
    assert better_low["train_proxy_range"] == [3.0, 10.0]


def test_zero_shot_transfer_matches_independent_fits():
    rows = zero_shot_transfer(LogarithmicFit(), X, Y, GROUPS)
    assert len(rows) == 6
    for row in rows:
        train, test = row["fit_on"] == GROUPS, row["test_on"] == GROUPS
        b, a = np.polyfit(np.log(X[train, 0]), Y[train], 1)
        pred = a + b * np.log(X[test, 0])
        assert row["mae"] == pytest.approx(np.mean(np.abs(Y[test] - pred)), rel=1e-9)
        assert row["r2"] == pytest.approx(r2_score(Y[test], pred), rel=1e-9)


def _ols_half_widths(x, y, x0, alpha):
    """Textbook OLS confidence and prediction interval half-widths at x0."""
    n = len(x)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    s = np.sqrt(np.sum(resid**2) / (n - 2))
    sxx = np.sum((x - x.mean()) ** 2)
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    lever = 1 / n + (x0 - x.mean()) ** 2 / sxx
    return t * s * np.sqrt(lever), t * s * np.sqrt(1 + lever)


def test_repeated_cv_is_k_fold_under_successive_seeds():
    result = repeated_cross_validation(LinearFit(), X, Y, folds=5, repeats=3, random_state=7)
    assert result.seeds == [7, 8, 9]
    pooled = [
        cross_val_predict(LinearFit(), X, Y, cv=KFold(5, shuffle=True, random_state=seed))
        for seed in (7, 8, 9)
    ]
    r2s = [r2_score(Y, p) for p in pooled]
    assert result.r2 == pytest.approx(np.mean(r2s), rel=1e-10)
    assert result.summary()["r2_sd"] == pytest.approx(np.std(r2s, ddof=1), rel=1e-8)
    assert result.summary()["r2_min"] == pytest.approx(min(r2s), rel=1e-10)
    assert result.mae == pytest.approx(np.mean([mean_absolute_error(Y, p) for p in pooled]))
    assert result.predictions == pytest.approx(pooled[0], rel=1e-10)
    assert result.residuals == pytest.approx(np.concatenate([Y - p for p in pooled]), rel=1e-10)
    loo = repeated_cross_validation(LinearFit(), X[:4], Y[:4], folds=5, repeats=3)
    assert len(loo.runs) == 1 and "not repeated" in loo.notes[-1]


def test_bootstrap_intervals_agree_with_analytic_ols_intervals():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 10, 40)
    y = 1.0 + 2.0 * x + rng.normal(0, 0.5, 40)
    x0 = np.array([2.0, 5.0, 9.0])
    residuals = repeated_cross_validation(LinearFit(), x.reshape(-1, 1), y).residuals
    conf, pred = _ols_half_widths(x, y, x0, 0.1)
    for kind, analytic in (("confidence", conf), ("prediction", pred)):
        draws = bootstrap_curves(
            LinearFit(), x.reshape(-1, 1), y, residuals, n_boot=1000, kind=kind, random_state=0
        )
        lower, upper = draws.interval(x0)
        ratio = (upper - lower) / (2 * analytic)
        assert np.all((ratio > 0.75) & (ratio < 1.25)), (kind, ratio)
        assert draws.n_failed == 0 and draws.values(x0).shape == (1000, 3)


def test_bootstrap_is_seeded_stored_whole_and_clipped():
    residuals = repeated_cross_validation(LinearFit(), X, Y).residuals
    first = bootstrap_curves(LinearFit(), X, Y, residuals, n_boot=200, random_state=3)
    again = bootstrap_curves(LinearFit(), X, Y, residuals, n_boot=200, random_state=3)
    assert np.array_equal(first.values([2.0]), again.values([2.0]))
    # one refit per row: its curve parameters reproduce a direct refit on the same resample
    index = np.random.default_rng(3).integers(0, 20, (200, 20))
    slope, intercept = np.polyfit(X[index[0], 0], Y[index[0]], 1)
    assert first.params["slope"][0, 0] == pytest.approx(slope, rel=1e-9)
    assert first.params["intercept"][0, 0] == pytest.approx(intercept, rel=1e-9)
    # a run's interval does not depend on what else is asked with it
    alone = first.interval([2.0])
    together = first.interval([3.5, 2.0, 1.0])
    assert (alone[0][0], alone[1][0]) == (together[0][1], together[1][1])
    # the second residual column is independent of the first, so two runs' scatter does not
    # cancel in their difference
    same = first.values(np.tile([2.0, 2.0], (first.n_ok, 1)), residual=[0, 1])
    assert np.std(same[:, 1] - same[:, 0]) > 0.5 * np.std(residuals)
    bounded = bootstrap_curves(
        LinearFit(), X, Y - 0.3, residuals, n_boot=200, random_state=3, bounds=(0.0, 1.0)
    )
    draws = bounded.values(np.linspace(-5, 10, 31))
    assert draws.min() == 0.0 and draws.max() == 1.0


def test_bootstrap_counts_degenerate_resamples_and_refuses_more_than_alpha_half():
    # A linear fit fails when every drawn point has the same x: with five at 1 and three at 2,
    # P = (5/8)^8 + (3/8)^8 = 0.0237, under alpha/2 = 0.05: counted, the interval kept.
    x = np.array([1.0] * 5 + [2.0] * 3).reshape(-1, 1)
    y = np.linspace(0, 1, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draws = bootstrap_curves(LinearFit(), x, y, [0.1, -0.1], n_boot=2000)
    assert draws.n_failed / 2000 == pytest.approx((5 / 8) ** 8 + (3 / 8) ** 8, abs=0.01)
    assert draws.n_ok == 2000 - draws.n_failed
    # Seven at 1, one at 2: P = (7/8)^8 = 0.344 > 0.05: refused, naming the share.
    x = np.array([1.0] * 7 + [2.0]).reshape(-1, 1)
    refused = pytest.raises(RBridgeError, match=r"linear fit failed on \d+ of 400 resamples")
    with refused, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bootstrap_curves(LinearFit(), x, y, [0.1, -0.1], n_boot=400)
    with pytest.raises(RBridgeError, match="needs held-out residuals"):
        bootstrap_curves(QuadraticFit(), X, Y, [], n_boot=50)
