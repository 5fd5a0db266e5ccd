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

from rbridge_tasks.atomic import atomic_write_text

SELECTED_BY = ("train_r2", "test_r2", "test_mae")
MAX_MARKDOWN_PAIRS = 45  # all pairs of 10 recipes; beyond, Markdown lists the wrong ones only


def jsonable(value: Any) -> Any:
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
    return json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    return atomic_write_text(path, to_json(payload))


def write_markdown(path: str | Path, text: str) -> Path:
    return atomic_write_text(path, text)


def fmt(value: Any, digits: int = 4) -> str:
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
            s["train_r2"],
            s["r2"],
            s["r2_fold_mean"],
            s["mae"],
            s["n_folds"],
        ]
        for name, s in forms.items()
    ]
    return table(
        ["form", "train R2 (fold mean)", "CV R2 (pooled)", "CV R2 (fold mean)", "CV MAE", "folds"],
        rows,
    )


def fit_markdown(payload: dict[str, Any]) -> str:
    params = ", ".join(
        f"{k} = {fmt(v)}"
        for k, v in payload["params"].items()
        if k != "equation" and not isinstance(v, dict)
    )
    interval = payload["interval"]
    text = f"## rBridge fit: {payload['form']}\n\n" + _join_section(payload["join"])
    text += (
        f"- curve: `{payload['params']['equation']}`"
        + (f" with {params}" if params else "")
        + f"\n- train R2 {fmt(payload['train_r2'])}\n"
    )
    protocol = payload["protocol"]
    if protocol["forms"]:
        how = (
            f"chosen by {protocol['select_by']}"
            if protocol["select_by"] in SELECTED_BY
            else "fixed by --form"
        )
        text += (
            f"\nForm {how}; {protocol['folds']}-fold CV (seed {protocol['seed']}):\n\n"
            + _forms_table(protocol["forms"], payload["form"])
        )
    text += (
        f"\nPoints ({interval['kind']} interval {1 - interval['alpha']:.0%}, "
        f"{interval['n_boot']} bootstrap resamples):\n\n"
    )
    text += table(
        ["key", "proxy", "target", "fitted", "CV prediction", "lower", "upper"],
        [
            [p["key"], p["x"], p["y"], p["fitted"], p["cv_prediction"], p["lower"], p["upper"]]
            for p in payload["points"]
        ],
    )
    return text + _footer(payload)


def evaluate_markdown(payload: dict[str, Any]) -> str:
    text = "## rBridge evaluation\n\n" + _join_section(payload["join"])
    protocol = payload["protocol"]
    how = (
        f"chosen by {protocol['select_by']}"
        if protocol["select_by"] in SELECTED_BY
        else "fixed by --form"
    )
    text += (
        f"\nk-fold CV ({protocol['folds']} folds, seed {protocol['seed']}); form {how}: "
        f"**{payload['chosen']}**\n\n" + _forms_table(payload["forms"], payload["chosen"])
    )
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
    text += (
        f"\nPairs, {shown}; P = probability that A beats B at the proxy scale "
        f"({interval['win_probability']}):\n\n"
    ) + table(
        ["A", "B", "proxy prefers", "target prefers", "agree", "P(A beats B)"],
        [
            [p["a"], p["b"], p["proxy_prefers"], p["target_prefers"], p["agree"], p["p_a_beats_b"]]
            for p in pairs
        ],
    )
    return text + _footer(payload)


def leaderboard_markdown(payload: dict[str, Any]) -> str:
    interval = payload["interval"]
    text = (
        f"## rBridge leaderboard: predicted {payload['target']['task']} "
        f"{payload['target']['metric']}\n\nFit `{payload['fit']}` ({payload['form']}); "
        f"{interval['kind']} interval {1 - interval['alpha']:.0%} from {interval['n_boot']} "
        "bootstrap resamples.\n\n"
    )
    text += table(
        ["rank", "model", "proxy score", "predicted", "lower", "upper", "extrapolated"],
        [
            [
                e["rank"],
                e["label"],
                e["x"],
                e["predicted"],
                e["lower"],
                e["upper"],
                e["extrapolated"],
            ]
            for e in payload["entries"]
        ],
    )
    return text + _footer(payload)


def gate_markdown(payload: dict[str, Any]) -> str:
    d = payload["difference"]
    verdict = "PASS" if payload["passed"] else "FAIL"
    text = f"## rBridge gate ({payload['rule']}): {verdict}\n\n{payload['reason']}\n\n" + table(
        ["run", "model", "proxy score", "predicted", "lower", "upper"],
        [
            [
                name,
                payload[name]["label"],
                payload[name]["x"],
                payload[name]["predicted"],
                payload[name]["lower"],
                payload[name]["upper"],
            ]
            for name in ("baseline", "candidate")
        ],
    )
    text += (
        f"\nPredicted candidate - baseline: {fmt(d['estimate'])} "
        f"({1 - d['alpha']:.0%} interval [{fmt(d['lower'])}, {fmt(d['upper'])}]), "
        f"tolerance {fmt(payload['tolerance'])}\n"
    )
    return text + _footer(payload)
