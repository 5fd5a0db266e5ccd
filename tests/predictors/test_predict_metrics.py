"""R2, MAE, decision accuracy, Kendall and Spearman against hand-computed values and scipy/sklearn.

Tolerances: 1e-12 for closed-form values, 1e-9 against library implementations.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mean_absolute_error, r2_score

from predictors.fitting.evaluation import mae, r2
from predictors.fitting.ranking import (
    average_ranks,
    bootstrap_ranking,
    decision_accuracy,
    kendall_tau,
    normal_win_probability,
    ranking_metrics,
    spearman_rho,
)

# Four recipes: proxy NLL (lower is better) and target accuracy (higher is better).
# Pairs by hand: A-B, A-C, A-D, B-C, C-D ordered alike; B-D not (proxy prefers D, target B).
PROXY_NLL = [3.0, 2.0, 2.5, 1.0]
TARGET_ACC = [0.30, 0.40, 0.35, 0.38]

values = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), min_size=3, max_size=12
)


def test_r2_and_mae_hand_computed():
    y, pred = [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.5]
    # SS_res = 0.25 + 0 + 0.25 + 0.25 = 0.75; SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert r2(y, pred) == pytest.approx(1 - 0.75 / 5, abs=1e-12)
    assert mae(y, pred) == pytest.approx(1.5 / 4, abs=1e-12)


def test_r2_undefined_cases_are_nan():
    assert math.isnan(r2([1.0], [1.0]))
    assert math.isnan(r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_r2_and_mae_match_sklearn(data):
    y = np.array(data.draw(values))
    pred = np.array(
        data.draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=len(y), max_size=len(y)))
    )
    if np.ptp(y) > 1e-6:
        assert r2(y, pred) == pytest.approx(r2_score(y, pred), rel=1e-9, abs=1e-9)
    assert mae(y, pred) == pytest.approx(mean_absolute_error(y, pred), rel=1e-9, abs=1e-9)


def test_decision_accuracy_hand_computed():
    result = decision_accuracy(
        PROXY_NLL, TARGET_ACC, proxy_higher_is_better=False, target_higher_is_better=True
    )
    assert result.accuracy == pytest.approx(5 / 6, abs=1e-12)
    assert (result.n_pairs, result.n_target_ties, result.n_proxy_ties) == (6, 0, 0)


def test_decision_accuracy_tie_rules():
    # (0,1): proxy tie, target decides -> 1/2; (0,2): agree -> 1; (1,2): target tie -> left out
    result = decision_accuracy(
        [1.0, 1.0, 2.0], [0.1, 0.2, 0.2], proxy_higher_is_better=True, target_higher_is_better=True
    )
    assert result.accuracy == pytest.approx(0.75, abs=1e-12)
    assert (result.n_pairs, result.n_target_ties, result.n_proxy_ties) == (2, 1, 1)


def test_decision_accuracy_all_target_ties_is_nan():
    assert math.isnan(
        decision_accuracy(
            [1, 2, 3], [5, 5, 5], proxy_higher_is_better=True, target_higher_is_better=True
        ).accuracy
    )


def test_direction_flip_mirrors_accuracy():
    same = decision_accuracy(
        PROXY_NLL, TARGET_ACC, proxy_higher_is_better=True, target_higher_is_better=True
    ).accuracy
    assert same == pytest.approx(1 / 6, abs=1e-12)


def test_kendall_and_spearman_hand_computed():
    metrics = ranking_metrics(
        PROXY_NLL, TARGET_ACC, proxy_higher_is_better=False, target_higher_is_better=True
    )
    # 5 concordant, 1 discordant of 6 pairs; rank differences (0, -1, 0, 1): 1 - 6*2/(4*15)
    assert metrics["kendall_tau_b"] == pytest.approx(4 / 6, abs=1e-12)
    assert metrics["spearman"] == pytest.approx(0.8, abs=1e-12)
    assert metrics["decision_accuracy"] == pytest.approx((1 + metrics["kendall_tau_b"]) / 2)


def test_average_ranks_hand_computed():
    assert average_ranks([10, 20, 10, 30]).tolist() == [1.5, 3.0, 1.5, 4.0]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=3, max_size=12), st.data())
def test_kendall_spearman_match_scipy_with_ties(a, data):
    b = data.draw(st.lists(st.integers(0, 6), min_size=len(a), max_size=len(a)))
    if len(set(a)) < 2 or len(set(b)) < 2:
        assert math.isnan(kendall_tau(a, b))
        return
    assert kendall_tau(a, b) == pytest.approx(scipy.stats.kendalltau(a, b).statistic, abs=1e-9)
    assert spearman_rho(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.permutations(list(range(8))), st.permutations(list(range(8))))
def test_decision_accuracy_is_half_one_plus_kendall_without_ties(a, b):
    da = decision_accuracy(a, b, proxy_higher_is_better=True, target_higher_is_better=True)
    tau = scipy.stats.kendalltau(a, b).statistic
    assert da.accuracy == pytest.approx((1 + tau) / 2, abs=1e-9)


def test_normal_win_probability_hand_computed():
    # P(1 beats 0) = Phi(0.02 / sqrt(0.01^2 + 0.01^2)) = Phi(sqrt(2)) = 0.9213503964748575
    prob = normal_win_probability([0.30, 0.32], [0.01, 0.01])
    assert prob[1, 0] == pytest.approx(0.9213503964748575, abs=1e-9)
    assert prob[0, 1] == pytest.approx(1 - 0.9213503964748575, abs=1e-9)
    exact = normal_win_probability([1.0, 2.0, 2.0], [0.0, 0.0, 0.0])
    assert exact[1, 0] == 1.0 and exact[0, 1] == 0.0 and exact[1, 2] == 0.5
    assert np.isnan(normal_win_probability([1.0, 2.0], None)).all()


def test_recipe_bootstrap_matches_exact_enumeration():
    """With 3 recipes all 27 resamples are equally likely: the mean of the bootstrap draws must
    approach the exact mean over them (resamples whose pairs are all target ties excluded)."""
    proxy, target = [1.0, 2.0, 3.0], [0.2, 0.1, 0.3]
    exact = []
    for index in itertools.product(range(3), repeat=3):
        da = decision_accuracy(
            np.take(proxy, index),
            np.take(target, index),
            proxy_higher_is_better=True,
            target_higher_is_better=True,
        )
        if not math.isnan(da.accuracy):
            exact.append(da.accuracy)
    boot = bootstrap_ranking(
        proxy,
        target,
        proxy_higher_is_better=True,
        target_higher_is_better=True,
        n_boot=20000,
        random_state=3,
    )
    assert np.nanmean(boot.draws) == pytest.approx(np.mean(exact), abs=0.01)
    assert boot.lower <= 2 / 3 <= boot.upper


def test_item_bootstrap_win_probability_matches_exact_enumeration():
    """Paired items: P(A beats B) over resamples of 4 items, enumerated exactly (4^4 cases)."""
    items_a = np.array([0.9, 0.1, 0.5, 0.3])
    items_b = np.array([0.2, 0.6, 0.4, 0.4])
    wins = 0.0
    cases = list(itertools.product(range(4), repeat=4))
    for index in cases:
        diff = items_a[list(index)].mean() - items_b[list(index)].mean()
        wins += 1.0 if diff > 1e-12 else 0.5 if abs(diff) <= 1e-12 else 0.0
    exact = wins / len(cases)
    boot = bootstrap_ranking(
        [items_a.mean(), items_b.mean()],
        [0.5, 0.4],
        proxy_higher_is_better=True,
        target_higher_is_better=True,
        mode="items",
        proxy_items=np.vstack([items_a, items_b]),
        n_boot=20000,
        random_state=1,
    )
    assert boot.win_probability[0, 1] == pytest.approx(exact, abs=0.01)
    assert boot.win_probability[1, 0] == pytest.approx(1 - exact, abs=0.01)


def test_perfect_agreement_has_degenerate_interval():
    boot = bootstrap_ranking(
        [1, 2, 3, 4, 5],
        [0.1, 0.2, 0.3, 0.4, 0.5],
        proxy_higher_is_better=True,
        target_higher_is_better=True,
        n_boot=500,
    )
    assert boot.lower == 1.0 and boot.upper == 1.0
