"""JSON for machines and Markdown for humans, from the same payload dict of each command.

JSON: NaN and infinities become null (JSON has no NaN; a reader must not mistake them for
numbers), numpy scalars and arrays become plain numbers and lists.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from predictors.fitting.ranking import DISAGREEMENT
from rbridge_tasks.core.atomic import atomic_write_text

SELECTED_BY = {
    "cv_r2": "cross-validated R2 (pooled out-of-fold, mean over the CV repeats)",
    "cv_mae": "cross-validated MAE (mean over the CV repeats)",
    "train_r2": "train R2 (the paper's protocol: mean over folds, in-sample)",
    "fixed": "fixed by --form",
}
MAX_MARKDOWN_PAIRS = 45  # all pairs of 10 recipes; beyond, Markdown lists the wrong ones only


def jsonable(value: Any) -> Any:
    """`value` with numpy types made plain and non-finite floats made None (module docstring)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    return value


def to_json(payload: dict[str, Any]) -> str:
    """Strict JSON (`allow_nan=False`): a NaN that escaped `jsonable` fails here, not in a
    reader."""
    return json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `to_json(payload)` atomically (a CI job never reads half a report)."""
    return atomic_write_text(path, to_json(payload))


def write_markdown(path: str | Path, text: str) -> Path:
    """Write a Markdown report atomically."""
    return atomic_write_text(path, text)


def fmt(value: Any, digits: int = 4) -> str:
    """One table cell: a dash for missing or non-finite, scientific notation for very large or
    small magnitudes, and `|` escaped so a value cannot break the table."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        magnitude = abs(float(value))
        if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
            return f"{float(value):.{digits - 1}e}"
        return f"{float(value):.{digits}f}"
    return str(value).replace("|", "\\|")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, each cell through `fmt`."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _side_line(name: str, side: dict[str, Any]) -> str:
    direction = "higher is better" if side["higher_is_better"] else "lower is better"
    where = f", where {', '.join(side['where'])}" if side["where"] else ""
    tasks = side.get("tasks") or [side["task"]]
    task_text = side["task"] if len(tasks) == 1 else f"{side['task']} (mean of {len(tasks)} tasks)"
    return (
        f"- {name}: `{task_text}` metric `{side['metric']}` filter `{side['filter']}` "
        f"({direction}{where})\n"
    )


def _join_section(join: dict[str, Any]) -> str:
    text = _side_line("proxy", join["proxy"]) + _side_line("target", join["target"])
    text += f"- joined on `{join['join_on']}`: {join['n_pairs']} pairs"
    left = len(join["unjoined_proxy_runs"]) + len(join["unjoined_target_runs"])
    if left:
        text += (
            f"; unjoined: {len(join['unjoined_proxy_runs'])} proxy and "
            f"{len(join['unjoined_target_runs'])} target run(s) (listed in the JSON)"
        )
    if join["duplicates"]:
        text += f"; {len(join['duplicates'])} duplicated key(s) averaged"
    return text + "\n"


def _footer(payload: dict[str, Any]) -> str:
    text = ""
    for title, key in (("Warnings", "warnings"), ("Notes", "notes")):
        if payload.get(key):
            text += f"\n**{title}**\n\n" + "".join(f"- {m}\n" for m in payload[key])
    return text


def _forms_table(forms: dict[str, dict[str, Any]], chosen: str) -> str:
    rows = [
        [
            f"**{name}**" if name == chosen else name,
            s["r2"],
            s["r2_sd"],
            f"[{fmt(s['r2_min'])}, {fmt(s['r2_max'])}]",
            s["mae"],
            s["train_r2"],
            f"{s['n_folds']} x {s['repeats']}",
        ]
        for name, s in forms.items()
    ]
    return table(
        [
            "form",
            "CV R2",
            "CV R2 sd",
            "CV R2 min, max",
            "CV MAE",
            "train R2 (paper)",
            "folds x repeats",
        ],
        rows,
    )


def _skill_line(payload: dict[str, Any]) -> str:
    skill = payload.get("skill")
    return f"**{skill['message']}**\n\n" if skill and skill["no_skill"] else ""


def _predicts_line(predicts: dict[str, Any]) -> str:
    shared = ", ".join(f"{k}={v}" for k, v in predicts["shared"].items())
    return (
        f"- predicts `{predicts['task']}` `{predicts['metric']}` (filter `{predicts['filter']}`) "
        + (f"of target runs with {shared}\n" if shared else "of target runs like the fit's\n")
    )


def _interval_text(interval: dict[str, Any]) -> str:
    failed = interval["n_failed"]
    return (
        f"{1 - interval['alpha']:.0%} {interval['kind']} interval: {interval['method']}; "
        f"{interval['n_boot']} resamples, seed {interval['seed']}, {failed} failed refit(s) "
        f"({failed / interval['n_boot']:.1%}; refused above {interval['max_failed_share']:.1%})"
    )


def _protocol_text(protocol: dict[str, Any]) -> str:
    seeds = protocol["seeds"]
    if protocol["leave_one_out"]:
        how = "leave-one-out CV (no more points than folds: one split, not repeated)"
    else:
        how = (
            f"{protocol['folds']}-fold CV repeated {protocol['repeats']} time(s) "
            f"(seeds {seeds[0]}-{seeds[-1]})"
        )
    quadratic = (
        "the quadratic kept monotone over the fitted range"
        if protocol["monotone"]
        else "the quadratic free (--allow-turning)"
    )
    return (
        f"Form {'chosen by ' if protocol['select'] != 'fixed' else ''}"
        f"{SELECTED_BY[protocol['select']]}; {how}; {quadratic}:\n\n"
    )


def fit_markdown(payload: dict[str, Any]) -> str:
    """`rbridge predict fit`'s report: the join, the forms compared, the chosen fit, its
    skill and intervals."""
    params = ", ".join(
        f"{k} = {fmt(v)}"
        for k, v in payload["params"].items()
        if k != "equation" and not isinstance(v, dict)
    )
    protocol = payload["protocol"]
    chosen = protocol["forms"][payload["form"]]
    text = f"## rBridge fit: {payload['form']}\n\n" + _skill_line(payload)
    text += _join_section(payload["join"]) + _predicts_line(payload["predicts"])
    text += (
        f"- curve: `{payload['params']['equation']}`"
        + (f" with {params}" if params else "")
        + f"\n- cross-validated R2 {fmt(chosen['r2'])}"
        + (
            f" (sd {fmt(chosen['r2_sd'])} over {chosen['repeats']} repeats)"
            if chosen["repeats"] > 1
            else ""
        )
        + f", CV MAE {fmt(chosen['mae'])}; train R2 {fmt(payload['train_r2'])}\n"
    )
    if payload["bounds"]:
        low, high = payload["bounds"]
        text += (
            f"- predictions, CV predictions and intervals clipped to [{fmt(low)}, {fmt(high)}] "
            "(the target is a rate)\n"
        )
    text += "\n" + _protocol_text(protocol) + _forms_table(protocol["forms"], payload["form"])
    text += f"\nPoints ({_interval_text(payload['interval'])}):\n\n"
    text += table(
        ["key", "proxy", "target", "fitted", "CV prediction", "lower", "upper"],
        [
            [p["key"], p["x"], p["y"], p["fitted"], p["cv_prediction"], p["lower"], p["upper"]]
            for p in payload["points"]
        ],
    )
    return text + _footer(payload)


def evaluate_markdown(payload: dict[str, Any]) -> str:
    """`rbridge predict evaluate`'s report: held-out error by CV and, when asked, by
    extrapolation, leave-one-group-out and transfer between groups."""
    text = "## rBridge evaluation\n\n" + _skill_line(payload) + _join_section(payload["join"])
    text += f"\nChosen: **{payload['chosen']}**. " + _protocol_text(payload["protocol"])
    text += _forms_table(payload["forms"], payload["chosen"])
    extrapolation = payload.get("extrapolation")
    if extrapolation:
        text += (
            f"\nExtrapolation (fit on the weakest {extrapolation['n_train']} proxy scores, "
            f"predict the best {extrapolation['n_test']}): R2 "
            f"{fmt(extrapolation['r2'])}, MAE {fmt(extrapolation['mae'])}\n"
        )
    logo = payload.get("leave_one_group_out")
    if logo:
        text += (
            f"\nLeave one group out (pooled R2 {fmt(logo['r2'])}, MAE {fmt(logo['mae'])}):"
            "\n\n"
            + table(
                ["held-out group", "n", "R2", "MAE"],
                [[g["group"], g["n"], g["r2"], g["mae"]] for g in logo["groups"]],
            )
        )
    if payload.get("transfer"):
        text += "\nZero-shot transfer (fit on one group, test on another):\n\n" + table(
            ["fit on", "test on", "n train", "n test", "R2", "MAE"],
            [
                [t["fit_on"], t["test_on"], t["n_train"], t["n_test"], t["r2"], t["mae"]]
                for t in payload["transfer"]
            ],
        )
    return text + _footer(payload)


def rank_markdown(payload: dict[str, Any]) -> str:
    """`rbridge predict rank`'s report: decision accuracy, correlations and their intervals."""
    interval = payload["interval"]
    text = "## rBridge ranking agreement\n\n" + _join_section(payload["join"]) + "\n"
    text += table(
        [
            "decision accuracy",
            f"{1 - interval['alpha']:.0%} interval ({interval['mode']})",
            "pairs",
            "target ties",
            "proxy ties",
            "Spearman",
            "Kendall tau-b",
        ],
        [
            [
                payload["decision_accuracy"],
                f"[{fmt(interval['lower'])}, {fmt(interval['upper'])}]",
                payload["n_pairs"],
                payload["n_target_ties"],
                payload["n_proxy_ties"],
                payload["spearman"],
                payload["kendall_tau_b"],
            ]
        ],
    )
    if "within" in payload:
        text += within_markdown(payload["within"])
    text += "\nRecipes, best proxy first:\n\n" + table(
        ["key", "proxy", "proxy rank", "target", "target rank"],
        [[r["key"], r["x"], r["proxy_rank"], r["y"], r["target_rank"]] for r in payload["recipes"]],
    )
    pairs = payload["pairs"]
    shown = "all pairs"
    if len(pairs) > MAX_MARKDOWN_PAIRS:
        pairs = [p for p in pairs if p["agree"] is False]
        shown = (
            f"the {len(pairs)} pairs the proxy gets wrong (all {len(payload['pairs'])} in the JSON)"
        )
    headers = ["A", "B", "proxy prefers", "target prefers", "agree", "P(A beats B)"]
    within = "within" in payload
    if within:
        headers.append(f"same {payload['within']['key']}")
    text += (
        f"\nPairs, {shown}; P = probability that A beats B at the proxy scale "
        f"({interval['win_probability']}):\n\n"
    ) + table(
        headers,
        [
            [p["a"], p["b"], p["proxy_prefers"], p["target_prefers"], p["agree"], p["p_a_beats_b"]]
            + ([p["block"] if p["block"] is not None else "no"] if within else [])
            for p in pairs
        ],
    )
    return text + _footer(payload)


def within_markdown(within: dict[str, Any]) -> str:
    """Decision accuracy within blocks: the figure, the blocks, and every pair it counted."""
    key = within["key"]
    interval = (
        f" ({fmt(within['lower'])}, {fmt(within['upper'])} by resampling recipes within blocks)"
        if "lower" in within
        else ""
    )
    text = (
        f"\n**Within `{key}`**: decision accuracy {fmt(within['decision_accuracy'])}{interval} "
        f"over the {within['n_pairs']} pairs whose two recipes share `{key}` "
        f"({within['n_target_ties']} target ties and {within['n_cross_block_pairs']} pairs "
        f"across blocks not counted); over all pairs {fmt(within['pooled_decision_accuracy'])}."
    )
    if within["disagrees"]:
        text += (
            f" **The two disagree by {DISAGREEMENT} or more: the pooled figure mostly ranks the "
            f"`{key}` blocks, not the choice inside one.**"
        )
    text += "\n\n" + table(
        [key, "recipes", "pairs counted", "decision accuracy"],
        [
            [b["block"], ", ".join(map(str, b["recipes"])), b["n_pairs"], b["decision_accuracy"]]
            for b in within["blocks"]
        ],
    )
    pairs = within["pairs_counted"]
    if len(pairs) > MAX_MARKDOWN_PAIRS:
        return text + f"\nPairs counted: the {len(pairs)} inside the blocks above (in the JSON)\n"
    counted = "; ".join(f"{a} vs {b}" for a, b in pairs)
    return text + f"\nPairs counted: {counted or 'none'}\n"


def leaderboard_markdown(payload: dict[str, Any]) -> str:
    """`rbridge predict leaderboard`'s report: each run's predicted target with its interval."""
    text = (
        f"## rBridge leaderboard: predicted {payload['target']['task']} "
        f"{payload['target']['metric']}\n\n" + _skill_line(payload)
    )
    if payload["target_extrapolation"]:
        text += f"**{payload['target_extrapolation']}**\n\n"
    text += f"- fit `{payload['fit']}` ({payload['form']})\n" + _predicts_line(payload["predicts"])
    text += f"- {_interval_text(payload['interval'])}\n\n"
    text += table(
        [
            "rank",
            "model",
            "proxy score",
            "predicted",
            "lower",
            "upper",
            "noise outside range",
            "extrapolated",
        ],
        [
            [
                e["rank"],
                e["label"],
                e["x"],
                e["predicted"],
                e["lower"],
                e["upper"],
                _share(e["noise_outside_share"]),
                e["extrapolated"],
            ]
            for e in payload["entries"]
        ],
    )
    return text + _footer(payload)


def gate_markdown(payload: dict[str, Any]) -> str:
    """`rbridge predict gate`'s report: the decision on a candidate against its baseline."""
    d = payload["difference"]
    verdict = "PASS" if payload["passed"] else "FAIL"
    text = f"## rBridge gate ({payload['rule']}): {verdict}\n\n" + _skill_line(payload)
    if payload["target_extrapolation"]:
        text += f"**{payload['target_extrapolation']}**\n\n"
    text += f"{payload['reason']}\n\n" + _predicts_line(payload["predicts"])
    text += f"- {_interval_text(payload['interval'])}\n\n"
    text += table(
        ["run", "model", "proxy score", "predicted", "lower", "upper", "noise outside range"],
        [
            [
                name,
                payload[name]["label"],
                payload[name]["x"],
                payload[name]["predicted"],
                payload[name]["lower"],
                payload[name]["upper"],
                _share(payload[name]["noise_outside_share"]),
            ]
            for name in ("baseline", "candidate")
        ],
    )
    noise = "with" if d["score_noise"] else "without"
    text += (
        f"\nPredicted candidate - baseline: {fmt(d['estimate'])} "
        f"({1 - d['alpha']:.0%} interval [{fmt(d['lower'])}, {fmt(d['upper'])}], each run's "
        f"held-out scatter {noise} its score's stderr), tolerance {fmt(payload['tolerance'])}\n"
    )
    if "within" in payload:
        text += (
            f"\nBoth runs have `{payload['within']['key']}` = {payload['within']['block']}. "
            "The fit's own ladder:" + within_markdown(payload["within"])
        )
    return text + _footer(payload)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"
