"""Does the proxy order pre-training recipes the way the large models do?

Decision accuracy (DataDecide, Magnusson et al. 2025): over all pairs of recipes, the share that
the proxy-scale score orders the same way as the target-scale accuracy. Scores are first turned
into "goodness" (negated when lower is better), so an NLL proxy and an accuracy target compare
directly. Ties, our choice (DataDecide does not discuss them):
- a pair tied on the target has no right answer and is left out of the denominator;
- a pair tied on the proxy but not on the target counts 1/2 (the expected score of breaking the
  tie by a coin flip).
Without ties, decision accuracy = (1 + Kendall's tau) / 2.

Spearman and Kendall are computed on the same goodness values, so positive means "the proxy orders
recipes like the target". Kendall is tau-b (tie-corrected), as scipy's default.

Within blocks (`blocks`, from `--within KEY`): only the pairs whose two recipes share a block
(the same token budget, the same model size) are counted. Pooled over every pair, decision
accuracy on a ladder of budgets mostly measures whether more compute helps; within a budget it
measures the data choice. The recipe bootstrap then resamples recipes within each block.

Uncertainty, two bootstraps (choose with `mode`):
- "recipes": resample the recipes (runs) with replacement; says how much the verdict depends on
  which recipes were compared. Always available.
- "items": resample benchmark items (lm-eval samples JSONL), the same draw for every run of a
  benchmark, and recompute each run's mean score; says how much it depends on which questions
  were asked. Needs per-item scores for the proxy; target items are resampled too when present.
Kendall's tau gets a percentile interval from the same draws (`tau_lower`, `tau_upper`).
The probability that recipe A beats B at the proxy scale uses the item bootstrap when per-item
scores exist (paired: both runs answered the same items) and otherwise a normal approximation
from lm-eval's standard errors, Phi((gA - gB) / sqrt(seA^2 + seB^2)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm
from tqdm import tqdm

from predictors.choices import MODES
from rbridge_tasks.core.errors import RBridgeError

# Pooled and within-block decision accuracy this far apart: the pooled figure mostly ranks the
# blocks (compute budgets, sizes), not the choice a data team makes inside one.
DISAGREEMENT = 0.1


@dataclass
class DecisionAccuracy:
    """The share of recipe pairs ordered alike, with the pairs counted and the ties (see the
    module docstring for how each kind of tie is scored)."""

    accuracy: float
    n_pairs: int
    n_target_ties: int
    n_proxy_ties: int


def goodness(values: Any, higher_is_better: bool) -> np.ndarray:
    """Scores turned so that larger is better, so any proxy compares with any target."""
    values = np.asarray(values, dtype=float)
    return values if higher_is_better else -values


def pair_indices(n: int, blocks: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j, or with `blocks` only the pairs inside one block."""
    i, j = np.triu_indices(n, k=1)
    if blocks is None:
        return i, j
    blocks = np.asarray(blocks, dtype=object)
    same = blocks[i] == blocks[j]
    return i[same], j[same]


def decision_accuracy(
    proxy: Any,
    target: Any,
    *,
    proxy_higher_is_better: bool,
    target_higher_is_better: bool,
    blocks: Any = None,
) -> DecisionAccuracy:
    """Share of recipe pairs ordered alike by proxy and target (ties: see module docstring);
    with `blocks`, of the pairs within a block only."""
    p = goodness(proxy, proxy_higher_is_better)
    t = goodness(target, target_higher_is_better)
    if len(p) != len(t):
        raise RBridgeError(f"{len(p)} proxy scores but {len(t)} target scores")
    i, j = pair_indices(len(p), blocks)
    dp, dt = np.sign(p[i] - p[j]), np.sign(t[i] - t[j])
    decided = dt != 0
    credit = np.where(dp == 0, 0.5, (dp == dt).astype(float))[decided]
    accuracy = float(credit.mean()) if credit.size else float("nan")
    return DecisionAccuracy(
        accuracy=accuracy,
        n_pairs=int(decided.sum()),
        n_target_ties=int((~decided).sum()),
        n_proxy_ties=int(((dp == 0) & decided).sum()),
    )


def kendall_tau(a: Any, b: Any) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_a) * (n0 - ties_b))."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n_a, n_b = np.count_nonzero(da), np.count_nonzero(db)
    if n_a == 0 or n_b == 0:
        return float("nan")
    return float(np.sum(da * db) / np.sqrt(float(n_a) * float(n_b)))


def average_ranks(values: Any) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2.0
            start = end
    return ranks


def spearman_rho(a: Any, b: Any) -> float:
    """Pearson correlation of the average ranks."""
    ra, rb = average_ranks(a), average_ranks(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def ranking_metrics(
    proxy: Any, target: Any, *, proxy_higher_is_better: bool, target_higher_is_better: bool
) -> dict[str, Any]:
    """Decision accuracy (with its pair and tie counts), Spearman's rho and Kendall's tau-b of
    the proxy against the target, over every pair of runs, as the JSON reports show them."""
    p = goodness(proxy, proxy_higher_is_better)
    t = goodness(target, target_higher_is_better)
    da = decision_accuracy(p, t, proxy_higher_is_better=True, target_higher_is_better=True)
    return {
        "decision_accuracy": da.accuracy,
        "n_pairs": da.n_pairs,
        "n_target_ties": da.n_target_ties,
        "n_proxy_ties": da.n_proxy_ties,
        "spearman": spearman_rho(p, t),
        "kendall_tau_b": kendall_tau(p, t),
    }


@dataclass
class RankingBootstrap:
    """A bootstrap of decision accuracy: its percentile interval and draws, the pairwise
    probabilities that one recipe beats another at the proxy scale, and Kendall's interval."""

    lower: float
    upper: float
    draws: np.ndarray
    win_probability: np.ndarray
    mode: str
    tau_lower: float = float("nan")
    tau_upper: float = float("nan")


def bootstrap_ranking(
    proxy: Any,
    target: Any,
    *,
    proxy_higher_is_better: bool,
    target_higher_is_better: bool,
    mode: str = "recipes",
    proxy_items: np.ndarray | None = None,
    target_items: np.ndarray | None = None,
    proxy_stderr: Any = None,
    n_boot: int = 1000,
    alpha: float = 0.1,
    random_state: int = 0,
    progress: bool = False,
    blocks: Any = None,
) -> RankingBootstrap:
    """Percentile interval of decision accuracy and the pairwise win-probability matrix.

    `proxy_items` / `target_items`: (n_recipes, n_items) per-item scores, rows aligned with
    `proxy` / `target`, columns the same benchmark items in the same order for every row.
    With `blocks`, decision accuracy counts the pairs within a block, and the recipe bootstrap
    resamples each block's recipes among themselves (Kendall's tau stays pooled).
    """
    if mode not in MODES:
        raise RBridgeError(f"bootstrap mode must be one of {MODES}, got {mode!r}")
    p = goodness(proxy, proxy_higher_is_better)
    t = goodness(target, target_higher_is_better)
    rng = np.random.default_rng(random_state)
    n = len(p)
    if mode == "items" and proxy_items is None:
        raise RBridgeError(
            "the item bootstrap needs per-item proxy scores (lm-eval samples "
            "JSONL next to every proxy results file); use mode 'recipes'"
        )
    draws = np.empty(n_boot)
    tau_draws = np.empty(n_boot)
    wins = np.zeros((n, n))
    members = None if blocks is None else _members(blocks)
    for b in tqdm(
        range(n_boot), desc="bootstrap", disable=not progress, mininterval=1.0, leave=False
    ):
        if mode == "recipes":
            if members is None:
                index = rng.integers(0, n, n)
            else:
                index = np.concatenate([rng.choice(m, len(m)) for m in members])
            draws[b] = decision_accuracy(
                p[index],
                t[index],
                proxy_higher_is_better=True,
                target_higher_is_better=True,
                blocks=None if blocks is None else np.asarray(blocks, dtype=object)[index],
            ).accuracy
            tau_draws[b] = kendall_tau(p[index], t[index])
            continue
        pb = goodness(_resampled_means(proxy_items, rng), proxy_higher_is_better)
        tb = (
            t
            if target_items is None
            else goodness(_resampled_means(target_items, rng), target_higher_is_better)
        )
        draws[b] = decision_accuracy(
            pb, tb, proxy_higher_is_better=True, target_higher_is_better=True, blocks=blocks
        ).accuracy
        tau_draws[b] = kendall_tau(pb, tb)
        wins += (pb[:, None] > pb[None, :]) + 0.5 * (pb[:, None] == pb[None, :])
    lower, upper = _percentile_interval(draws, alpha)
    tau_lower, tau_upper = _percentile_interval(tau_draws, alpha)
    win_probability = wins / n_boot if mode == "items" else normal_win_probability(p, proxy_stderr)
    np.fill_diagonal(win_probability, np.nan)
    return RankingBootstrap(
        lower=lower,
        upper=upper,
        draws=draws,
        win_probability=win_probability,
        mode=mode,
        tau_lower=tau_lower,
        tau_upper=tau_upper,
    )


def _percentile_interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    """Over the finite draws: a resample of tied recipes has no decision accuracy or tau."""
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return float("nan"), float("nan")
    lower, upper = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lower), float(upper)


def normal_win_probability(goodness_values: Any, stderr: Any) -> np.ndarray:
    """P(row beats column) = Phi(diff / sqrt(se_row^2 + se_col^2)); NaN where se is unknown."""
    g = np.asarray(goodness_values, dtype=float)
    se = np.full(len(g), np.nan) if stderr is None else np.asarray(stderr, dtype=float)
    diff = g[:, None] - g[None, :]
    scale = np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = norm.cdf(diff / scale)
    exact = scale == 0
    prob[exact] = np.where(diff[exact] > 0, 1.0, np.where(diff[exact] < 0, 0.0, 0.5))
    return prob


def _members(blocks: Any) -> list[np.ndarray]:
    blocks = np.asarray(blocks, dtype=object)
    return [np.flatnonzero(blocks == name) for name in dict.fromkeys(blocks.tolist())]


def _resampled_means(items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    columns = rng.integers(0, items.shape[1], items.shape[1])
    return items[:, columns].mean(axis=1)
