"""`rbridge predict` on real lm-eval runs of tiny models, and every kind of bad input.

Bad input must give exit code 2 and exactly one line on stderr that names the file, record or
field; these go through `rbridge_tasks.cli.main`, the console script's entry point, and one
through the installed `rbridge` executable itself. Hand-made results files of an exactly linear
ladder carry the hostile cases (non-finite values, mixed scales, disagreeing directions, an
overflowing fit, a manifest with a BOM); a warning lists the runs concerned.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_main

from predictors.cli import main as predict_main
from rbridge_tasks.cli import main as rbridge_main

TINY = [
    "--proxy-task",
    "tiny_nll",
    "--proxy-metric",
    "answer_nll",
    "--proxy-where",
    "role=proxy",
    "--target-task",
    "tiny_mc",
    "--target-metric",
    "acc",
    "--target-where",
    "role=target",
    "--quiet",
]


def rbridge_error(argv: list[str], capsys) -> str:
    """Run `rbridge predict ...`; require exit 2 and a one-line message, and return it."""
    code = rbridge_main(["predict", *argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("rbridge predict: error: "), err
    assert "Traceback" not in err
    return lines[0]


def raw(path: Path) -> dict:
    return json.loads(path.read_text())


def exact_paired_win_probability(a: np.ndarray, b: np.ndarray) -> float:
    """P(mean of resampled a > mean of resampled b), same resample for both, enumerated over
    all multinomial count vectors (C(2n-1, n) of them) instead of sampled."""
    n = len(a)
    diff = a - b
    total = 0.0
    for cuts in itertools.combinations(range(2 * n - 1), n - 1):
        counts = np.diff([-1, *cuts, 2 * n - 1]) - 1
        weight = math.factorial(n) / np.prod([math.factorial(c) for c in counts]) / n**n
        s = float(counts @ diff)
        total += weight * (1.0 if s > 1e-12 else 0.5 if abs(s) <= 1e-12 else 0.0)
    return total


def test_rank_with_item_bootstrap_on_lm_eval_samples(lm_eval_runs, tmp_path, capsys):
    """Recipes A-D, plus A2: a second untrained proxy (another seed) sharing A's target, so one
    pair (A vs A2) is a close call whose win probability is far from 0 and 1."""
    proxies = {
        key: next((lm_eval_runs / "runs" / f"proxy-{key}").rglob("results_*.json"))
        for key in "ABCD"
    }
    proxies["A2"] = next((lm_eval_runs / "extra" / "dup").rglob("results_*.json"))
    lines = ["path,role,key"]
    for key, path in proxies.items():
        target = next((lm_eval_runs / "runs" / f"target-{key[0]}").rglob("results_*.json"))
        lines += [f"{path},proxy,{key}", f"{target},target,{key}"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rank"
    code = predict_main(
        [
            "rank",
            "--manifest",
            str(manifest),
            *TINY,
            "--bootstrap",
            "items",
            "--n-boot",
            "4000",
            "--out-dir",
            str(out),
        ]
    )
    capsys.readouterr()
    assert code == 0
    payload = json.loads((out / "rank.json").read_text())
    assert payload["interval"]["mode"] == "items" and len(payload["pairs"]) == 10
    items = {}
    for key, path in proxies.items():
        samples = next(path.parent.glob("samples_tiny_nll_*.jsonl"))
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        items[key] = np.array([r["answer_nll"] for r in sorted(rows, key=lambda r: r["doc"]["id"])])
    close_calls = 0
    for pair in payload["pairs"]:
        # lower NLL is better: A beats B when A's resampled mean NLL is below B's
        exact = exact_paired_win_probability(-items[pair["a"]], -items[pair["b"]])
        assert pair["p_a_beats_b"] == pytest.approx(exact, abs=0.03), pair
        close_calls += 0.05 < exact < 0.95
    assert close_calls >= 1
    recipes = {r["key"]: r for r in payload["recipes"]}
    for key, values in items.items():
        assert recipes[key]["x"] == pytest.approx(values.mean(), rel=1e-12)


def test_fit_and_evaluate_on_lm_eval_runs(lm_eval_runs, tmp_path, capsys):
    out = tmp_path / "fit"
    code = predict_main(
        [
            "fit",
            "--results",
            str(lm_eval_runs / "runs"),
            *TINY,
            "--form",
            "linear",
            "--group-by",
            "corpus",
            "--n-boot",
            "100",
            "--out-dir",
            str(out),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 0 and "only 4 points" in err  # too few points: warned, not hidden
    payload = json.loads((out / "fit.json").read_text())
    x = [p["x"] for p in payload["points"]]
    y = [p["y"] for p in payload["points"]]
    for point in payload["points"]:
        assert point["x"] == raw(Path(point["proxy_run"]))["results"]["tiny_nll"]["answer_nll,none"]
    slope, intercept = np.polyfit(x, y, 1)
    assert (payload["params"]["slope"], payload["params"]["intercept"]) == pytest.approx(
        (slope, intercept), rel=1e-9, abs=1e-12
    )
    assert any("fewer than 3 per parameter" in w for w in payload["warnings"])
    assert (out / "fit.png").read_bytes()[:4] == b"\x89PNG"
    code = predict_main(
        [
            "evaluate",
            "--results",
            str(lm_eval_runs / "runs"),
            *TINY,
            "--form",
            "linear",
            "--group-by",
            "corpus",
            "--no-plot",
            "--json",
        ]
    )
    evaluation = json.loads(capsys.readouterr()[0])
    assert code == 0 and {r["fit_on"] for r in evaluation["transfer"]} == {"code", "web"}
    assert evaluation["protocol"]["forms"]["linear"]["n_folds"] == 4  # LOO: 4 points < 5 folds


def test_malformed_results_file(lm_eval_runs, tmp_path, capsys):
    broken = tmp_path / "runs"
    shutil.copytree(lm_eval_runs / "runs", broken)
    victim = sorted(broken.rglob("results_*.json"))[0]
    victim.write_text(victim.read_text()[:300])
    message = rbridge_error(["fit", "--results", str(broken), *TINY], capsys)
    assert str(victim) in message and "not valid JSON" in message and ", line " in message


def test_missing_metric(lm_eval_runs, capsys):
    args = [a if a != "answer_nll" else "rbridge_nll" for a in TINY]
    message = rbridge_error(["fit", "--results", str(lm_eval_runs / "runs"), *args], capsys)
    assert "results_" in message and "field 'results.tiny_nll'" in message
    assert "has no metric 'rbridge_nll' (metrics: answer_nll)" in message


def test_nan_value(lm_eval_runs, tmp_path, capsys):
    damaged = tmp_path / "runs"
    shutil.copytree(lm_eval_runs / "runs", damaged)
    victim = next((damaged / "target-C").rglob("results_*.json"))
    data = raw(victim)
    data["results"]["tiny_mc"]["acc,none"] = float("nan")
    victim.write_text(json.dumps(data))
    message = rbridge_error(["rank", "--results", str(damaged), *TINY], capsys)
    assert f"{victim}, field 'results.tiny_mc.acc,none': target value is NaN" in message


def test_single_data_point(lm_eval_runs, capsys):
    message = rbridge_error(
        ["fit", "--results", str(lm_eval_runs / "runs"), *TINY, "--where", "recipe=A"], capsys
    )
    assert "only 1 joined proxy/target point(s) (key 'A')" in message


def test_mismatched_join(lm_eval_runs, capsys):
    message = rbridge_error(
        [
            "fit",
            "--results",
            str(lm_eval_runs / "runs"),
            *TINY,
            "--proxy-where",
            "recipe=A",
            "--target-where",
            "recipe=B",
        ],
        capsys,
    )
    assert "no 'recipe' value is shared by proxy and target runs" in message
    assert "proxy keys ['A'] (1), target keys ['B'] (1)" in message


def test_duplicated_runs(lm_eval_runs, capsys):
    message = rbridge_error(
        [
            "fit",
            "--results",
            str(lm_eval_runs / "runs"),
            str(lm_eval_runs / "extra" / "dup"),
            *TINY,
        ],
        capsys,
    )
    assert "join key(s) have several runs, e.g. 'A'" in message and "proxy-dup" in message


def test_gate_needs_single_runs_and_fit_files_are_checked(lm_eval_runs, tmp_path, capsys):
    out = tmp_path / "fit"
    assert (
        predict_main(
            [
                "fit",
                "--results",
                str(lm_eval_runs / "runs"),
                *TINY,
                "--form",
                "linear",
                "--n-boot",
                "50",
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    fit_file = out / "fit.json"
    fit = raw(fit_file)
    assert fit["skill"]["no_skill"] and fit["skill"]["cv_r2"] <= 0  # four untrained recipes
    argv = [
        "gate",
        "--fit",
        str(fit_file),
        "--baseline",
        str(lm_eval_runs / "runs"),
        "--candidate",
        str(lm_eval_runs / "extra" / "orphan"),
        "--quiet",
    ]
    message = rbridge_error(argv, capsys)
    assert f"{fit_file}: no skill: out of sample the linear fit predicts no better" in message
    assert "gate will not decide on it (pass --allow-no-skill" in message
    message = rbridge_error([*argv, "--allow-no-skill"], capsys)
    assert "the baseline must be one run, found 8" in message
    data = raw(fit_file)
    data["model"]["points"]["y"][0] += 0.5
    fit_file.write_text(json.dumps(data))
    message = rbridge_error(
        ["leaderboard", "--fit", str(fit_file), "--results", str(lm_eval_runs / "extra")], capsys
    )
    assert f"{fit_file}, field 'model.params.intercept': refitting gives" in message
    message = rbridge_error(
        [
            "leaderboard",
            "--fit",
            str(lm_eval_runs / "tasks" / "mc.json"),
            "--results",
            str(lm_eval_runs / "extra"),
        ],
        capsys,
    )
    assert "mc.json, field 'model': not a fit file" in message


def test_bad_arguments(lm_eval_runs, capsys):
    message = rbridge_error(
        ["fit", "--results", str(lm_eval_runs / "runs"), *TINY, "--where", "recipe~A"], capsys
    )
    assert "--where 'recipe~A': expected FIELD=VALUE" in message
    message = rbridge_error(["fit", *TINY], capsys)
    assert "no input: pass --results" in message
    assert predict_main(["fit", "--results"]) == 2  # argparse's own usage error
    capsys.readouterr()


def test_console_script_reports_one_line(lm_eval_runs):
    rbridge = Path(sys.executable).with_name("rbridge")
    args = [a if a != "answer_nll" else "rbridge_nll" for a in TINY]
    result = subprocess.run(
        [str(rbridge), "predict", "rank", "--results", str(lm_eval_runs / "runs"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "has no metric 'rbridge_nll'" in result.stderr


# recipe -> (proxy rbridge_nll, target acc): a clean, exactly linear relation
POINTS = {"A": (2.0, 0.2), "B": (1.5, 0.35), "C": (1.0, 0.5), "D": (0.5, 0.65)}


def results_file(path: Path, task: str, metric: str, value, recipe: str, **extra) -> Path:
    data = {
        "results": {task: {"alias": task, f"{metric},none": value, f"{metric}_stderr,none": 0.01}},
        "higher_is_better": {task: {metric: metric == "acc"}},
        "configs": {task: {"task": task, "metadata": {"recipe": recipe, **extra.pop("meta", {})}}},
        "n-samples": {task: {"original": 100, "effective": extra.pop("n", 100)}},
        "config": {"model": "hf", "model_args": f"pretrained=m-{path.stem}"},
        "lm_eval_version": "0.4.13",
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, allow_nan=True)
    path.write_text(text)
    return path


def ladder(root: Path, points=POINTS, proxy_extra=None, target_extra=None) -> Path:
    for recipe, (x, y) in points.items():
        extra = (proxy_extra or {}).get(recipe, {})
        results_file(root / f"results_proxy_{recipe}.json", "p", "rbridge_nll", x, recipe, **extra)
        extra = (target_extra or {}).get(recipe, {})
        results_file(root / f"results_target_{recipe}.json", "t", "acc", y, recipe, **extra)
    return root


FIT = ["--proxy-task", "p", "--proxy-metric", "rbridge_nll", "--target-task", "t"]
FIT += ["--target-metric", "acc", "--form", "linear", "--n-boot", "20", "--no-plot", "--json"]


def fit(capsys, root: Path, *extra: str) -> tuple[int, str, str]:
    return run_main(capsys, "predict", "fit", "--results", str(root), *FIT, *extra)


def test_the_clean_ladder_fits_exactly(tmp_path, capsys):
    code, out, err = fit(capsys, ladder(tmp_path / "runs"))
    assert code == 0, err
    params = json.loads(out)["params"]
    x, y = np.array(list(POINTS.values())).T
    slope, intercept = np.polyfit(x, y, 1)
    assert math.isclose(params["slope"], slope, abs_tol=1e-9)
    assert math.isclose(params["intercept"], intercept, abs_tol=1e-9)
    assert not [w for w in json.loads(out)["warnings"] if "differ in" in w]


def test_fitted_runs_that_differ_in_how_they_were_scored_are_listed(tmp_path, capsys):
    root = ladder(
        tmp_path / "runs",
        proxy_extra={
            "A": {"n": 50},
            "B": {"meta": {"traces": "other.jsonl"}},
            "C": {"meta": {"minmax_scope": "benchmark"}},
            "D": {"meta": {"minmax_scope": "trace"}},  # the default, said out loud
        },
    )
    code, out, err = fit(capsys, root)
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert (
        "the fitted proxy runs differ in n-samples (50: recipe ['A'] (1); 100: recipe "
        "['B', 'C', 'D'] (3)); their scores may not be comparable"
    ) in warnings
    assert any(
        "differ in traces ((not set): recipe ['A', 'C', 'D'] (3); other.jsonl" in w
        for w in warnings
    )
    assert any(
        "differ in minmax_scope (trace: recipe ['A', 'B', 'D'] (3); benchmark" in w
        for w in warnings
    )
    assert "rbridge predict: warning: the fitted proxy runs differ in n-samples" in err


def test_targets_mixing_percent_and_fractions_are_refused(tmp_path, capsys):
    points = {**POINTS, "D": (0.5, 65.0)}
    code, _, err = fit(capsys, ladder(tmp_path / "runs", points))
    assert code == 2
    assert "target: 'acc' mixes percentages and fractions: above 1 in [" in err
    assert "results_target_D.json" in err.split("at most 1 in")[0]
    assert "results_target_A.json" in err.split("at most 1 in")[1]
    percent = {k: (x, 100 * y) for k, (x, y) in POINTS.items()}  # all percent: consistent
    code, _, err = fit(capsys, ladder(tmp_path / "percent", percent))
    assert code == 0, err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("inf"), "target value is inf, not finite"),
        (float("nan"), "target value is NaN"),
    ],
)
def test_infinite_and_nan_values_name_the_file_and_field(tmp_path, capsys, value, message):
    root = ladder(tmp_path / "runs")
    victim = results_file(root / "results_target_B.json", "t", "acc", value, "B")
    assert "Infinity" in victim.read_text() or "NaN" in victim.read_text()
    code, _, err = fit(capsys, root)
    assert code == 2
    assert f"{victim}, field 'results.t.acc,none': {message}" in err


def test_a_task_config_that_is_not_an_object(tmp_path, capsys):
    root = ladder(tmp_path / "runs")
    victim = root / "results_proxy_A.json"
    data = json.loads(victim.read_text())
    data["configs"]["p"] = ["not", "an", "object"]
    victim.write_text(json.dumps(data))
    code, _, err = fit(capsys, root)
    assert code == 2 and f"{victim}, field 'configs.p': a task's config must be an object" in err


def test_higher_is_better_conflicts_name_the_files(tmp_path, capsys):
    root = ladder(tmp_path / "runs")
    victim = root / "results_target_C.json"
    data = json.loads(victim.read_text())
    data["higher_is_better"]["t"]["acc"] = False
    victim.write_text(json.dumps(data))
    code, _, err = fit(capsys, root)
    assert code == 2
    assert "results files disagree on whether higher 'acc' is better (higher: [" in err
    assert f"lower: ['{victim}'] (1)" in err


def test_overflow_in_a_fit_is_reported_as_such(tmp_path, capsys):
    points = {k: (x * 1e307, y) for k, (x, y) in POINTS.items()}
    code, _, err = fit(capsys, ladder(tmp_path / "runs", points))
    assert code == 2
    assert (
        "proxy value 2e+307 of " in err and "results_proxy_A.json (key 'A') would overflow" in err
    )


def test_a_manifest_with_a_utf8_bom_is_read(tmp_path, capsys):
    root = ladder(tmp_path / "runs")
    lines = ["path,role,key"] + [
        f"{f.name},{'proxy' if 'proxy' in f.name else 'target'},{f.stem[-1]}"
        for f in sorted(root.glob("*.json"))
    ]
    manifest = root / "manifest.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    code, out, err = run_main(capsys, "predict", "fit", "--manifest", str(manifest), *FIT)
    assert code == 0, err
    assert json.loads(out)["join"]["n_pairs"] == 4
    manifest.write_text("\n".join([*lines[:2], lines[2] + ",extra"]) + "\n")
    code, _, err = run_main(capsys, "predict", "fit", "--manifest", str(manifest), *FIT)
    assert code == 2 and f"{manifest}, line 3: 4 cells, but the header has 3" in err
