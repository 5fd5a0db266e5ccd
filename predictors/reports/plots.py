"""PNG charts: the fit (points, curve, interval band, CV predictions), the leaderboard, and
compare's panels of every proxy metric.

Agg backend only: these run in CI and on headless machines. Files are written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rbridge_tasks.core.atomic import atomic_write

LOG_SCALE_RATIO = 100.0
MAX_LABELLED_POINTS = 15  # beyond this, point labels overlap into a smudge


def plot_fit(
    path: str | Path,
    *,
    x: np.ndarray,
    y: np.ndarray,
    keys: list[str],
    curve_x: np.ndarray,
    curve_y: np.ndarray,
    band: tuple[np.ndarray, np.ndarray] | None,
    band_label: str,
    cv_predictions: np.ndarray | None,
    groups: list[str] | None,
    x_label: str,
    y_label: str,
    title: str,
) -> Path:
    """Proxy score against target accuracy, the fitted form and where CV put each point."""
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    if band is not None:
        ax.fill_between(
            curve_x, band[0], band[1], color="tab:blue", alpha=0.18, lw=0, label=band_label
        )
    ax.plot(curve_x, curve_y, color="tab:blue", lw=2, label="fit")
    group_names = sorted(set(groups)) if groups else [None]
    markers = "osD^vP*X"
    for k, name in enumerate(group_names):
        mask = np.ones(len(x), bool) if name is None else np.array([g == name for g in groups])
        ax.scatter(
            x[mask],
            y[mask],
            s=36,
            marker=markers[k % len(markers)],
            color="black",
            zorder=3,
            label="observed" if name is None else f"observed: {name}",
        )
    if cv_predictions is not None:
        ax.scatter(
            x,
            cv_predictions,
            s=40,
            facecolors="none",
            edgecolors="tab:red",
            zorder=4,
            label="CV prediction (held out)",
        )
        for xi, yi, pi in zip(x, y, cv_predictions, strict=True):
            ax.plot([xi, xi], [yi, pi], color="tab:red", lw=0.7, alpha=0.6)
    if len(x) <= MAX_LABELLED_POINTS:
        for xi, yi, key in zip(x, y, keys, strict=True):
            ax.annotate(
                str(key),
                (xi, yi),
                textcoords="offset points",
                xytext=(4, 3),
                fontsize=6.5,
                color="dimgray",
            )
    if np.all(x > 0) and np.max(x) / np.min(x) > LOG_SCALE_RATIO:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_leaderboard(
    path: str | Path,
    *,
    labels: list[str],
    predicted: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    extrapolated: list[bool],
    x_label: str,
    title: str,
    fitted_range: tuple[float, float],
) -> Path:
    """Best first, a dot and interval whisker per entry; extrapolations in orange.

    Dots rather than bars from zero: the differences that matter are a point or two of accuracy.
    """
    rows = np.arange(len(labels))[::-1]
    fig, ax = plt.subplots(figsize=(8.0, 1.9 + 0.38 * len(labels)), dpi=120)
    ax.axvspan(*fitted_range, color="gray", alpha=0.12, lw=0)
    for flag, color in ((False, "tab:blue"), (True, "tab:orange")):
        mask = np.array(extrapolated) == flag
        if not mask.any():
            continue
        ax.errorbar(
            predicted[mask],
            rows[mask],
            xerr=[predicted[mask] - lower[mask], upper[mask] - predicted[mask]],
            fmt="o",
            color=color,
            ecolor=color,
            capsize=3,
            lw=1.2,
            ms=6,
        )
    ax.set_yticks(rows, labels, fontsize=8)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(x_label)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        plt.Line2D([], [], marker="o", color="tab:blue", lw=1.2),
        plt.Line2D([], [], marker="o", color="tab:orange", lw=1.2),
        plt.Rectangle((0, 0), 1, 1, color="gray", alpha=0.12),
    ]
    height = fig.get_size_inches()[1]
    fig.legend(
        handles,
        [
            "proxy score inside the fitted range",
            "proxy score outside it (extrapolated)",
            "target range the fit was trained on",
        ],
        fontsize=7.5,
        loc="lower center",
        ncol=3,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def plot_compare(path: str | Path, payload: dict[str, Any]) -> Path:
    """One panel per proxy metric: each benchmark's points, fitted form and CV predictions.

    Each panel has its own scales, so a metric in the thousands (token ranks) and one near 1
    (probabilities) are both legible. Within a panel the benchmarks share the target axis
    (accuracies, whose predictions are clipped to [0, 1]); the proxy axis is the metric's own,
    logarithmic where its scores span two or more decades, unless the benchmarks' ranges
    differ too much to share it (`_shared_axis`): then each benchmark's scores are rescaled to
    its own range (0 = lowest, 1 = highest; after a log where they span decades) and the panel
    says so.
    """
    metrics = payload["metrics"]
    if not metrics:
        raise ValueError("no metric to draw")
    benches = list(payload["cells"])
    cols = int(np.ceil(np.sqrt(len(metrics))))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.6), dpi=110, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        cells = {b: payload["cells"][b][metric] for b in benches if metric in payload["cells"][b]}
        scores = {
            b: np.array([p["x"] for p in cell["points"]], dtype=float) for b, cell in cells.items()
        }
        shared = _shared_axis(list(scores.values()))
        for bench, cell in cells.items():
            color = colors[benches.index(bench) % len(colors)]
            to_axis = _identity if shared else _rescaler(scores[bench])
            x = to_axis(scores[bench])
            y = np.array([p["y"] for p in cell["points"]], dtype=float)
            cv = np.array(
                [
                    np.nan if p["cv_prediction"] is None else p["cv_prediction"]
                    for p in cell["points"]
                ],
                dtype=float,
            )
            ax.plot(
                to_axis(np.asarray(cell["curve"]["x"], dtype=float)),
                cell["curve"]["y"],
                color=color,
                lw=1.5,
            )
            label = f"{bench} ({cell['form']}{', no skill' if cell.get('no_skill') else ''})"
            ax.scatter(x, y, s=22, color=color, zorder=3, label=label)
            ax.scatter(x, cv, s=26, facecolors="none", edgecolors=color, zorder=4, lw=0.9)
            for xi, yi, pi in zip(x, y, cv, strict=True):
                ax.plot([xi, xi], [yi, pi], color=color, lw=0.6, alpha=0.5)
        values = np.concatenate(list(scores.values()))
        if shared and _spans_decades(values):
            ax.set_xscale("log")  # perplexities, token ranks: points would pile up at the left
        if not shared:
            ax.set_xlabel("rescaled to each benchmark's range", fontsize=7)
        average = payload["average"][metric]
        ax.set_title(
            f"{metric}\nCV R2 {_num(average['test_r2']['value'])}, "
            f"CV MAE {_num(average['test_mae']['value'])}",
            fontsize=8.5,
        )
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(
        "proxy metric (x) vs target accuracy (y): filled = observed, line = chosen fit, "
        "hollow = held-out CV prediction",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, path)


def _spans_decades(x: np.ndarray) -> bool:
    return bool(np.all(x > 0) and np.max(x) / np.min(x) > LOG_SCALE_RATIO)


def _shared_axis(scores: list[np.ndarray]) -> bool:
    """Can the benchmarks' scores share one axis? Not when one benchmark's span would be under
    a fifth of the panel's (its points squeezed into a sliver)."""
    if len(scores) < 2:
        return True
    if all(_spans_decades(x) for x in scores):
        scores = [np.log(x) for x in scores]
    whole = np.ptp(np.concatenate(scores))
    return bool(whole == 0 or min(np.ptp(x) for x in scores) >= whole / 5)


def _rescaler(x: np.ndarray) -> Any:
    """Scores -> [0, 1] over this benchmark's own range (through a log when it spans decades)."""
    transform = np.log if _spans_decades(x) else _identity
    low, high = float(np.min(transform(x))), float(np.max(transform(x)))
    scale = (high - low) or 1.0
    return lambda v: (transform(np.asarray(v, dtype=float)) - low) / scale


def _identity(x: Any) -> Any:
    return x


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
