"""`rbridge predict` on hostile inputs: every case is one line naming the file (and field or
line) with exit code 2 and nothing written, or a warning that lists the runs concerned."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rbridge_tasks.cli import main as rbridge_main

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


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = rbridge_main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def fit(capsys, root: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "predict", "fit", "--results", str(root), *FIT, *extra)


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
    code, out, err = run(capsys, "predict", "fit", "--manifest", str(manifest), *FIT)
    assert code == 0, err
    assert json.loads(out)["join"]["n_pairs"] == 4
    manifest.write_text("\n".join([*lines[:2], lines[2] + ",extra"]) + "\n")
    code, _, err = run(capsys, "predict", "fit", "--manifest", str(manifest), *FIT)
    assert code == 2 and f"{manifest}, line 3: 4 cells, but the header has 3" in err


def table(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Model,GSM8K,Family\n" + "".join(r + "\n" for r in rows))
    return path


IMPORT = ["--metric", "GSM8K=gsm8k:exact_match", "--model-column", "Model"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["a,0.5,x", "b,0.6"], "line 3: 2 cells, but the header has 3"),
        (["a,0.5,x", "b,0.6,x,y"], "line 3: 4 cells, but the header has 3"),
        (["a,0.5,x", "b,inf,x"], "line 3, field 'GSM8K': value inf is not a finite number"),
        (["a,0.5,x", "b,high,x"], "line 3, field 'GSM8K': value 'high' is not a number"),
    ],
)
def test_bad_table_rows_fail_before_anything_is_written(tmp_path, capsys, rows, message):
    good = table(tmp_path / "good.csv", ["c,0.7,x"])
    bad = table(tmp_path / "bad.csv", rows)
    out = tmp_path / "imported"
    code, _, err = run(
        capsys, "predict", "import-table", str(good), str(bad), "--out-dir", str(out), *IMPORT
    )
    assert code == 2 and f"{bad}, {message}" in err, err
    assert not out.exists()  # not even the good table's file, nor row 2 of the bad one


def test_tables_whose_outputs_collide_are_refused(tmp_path, capsys):
    first = table(tmp_path / "one" / "scores.csv", ["a,0.5,x"])
    second = table(tmp_path / "two" / "scores.csv", ["a,0.9,x"])
    out = tmp_path / "imported"
    code, _, err = run(
        capsys, "predict", "import-table", str(first), str(second), "--out-dir", str(out), *IMPORT
    )
    assert code == 2
    assert f"{second}: would write {out}/a/results_scores_row00000.json, as {first} does" in err
    assert not out.exists()
    code, _, err = run(
        capsys, "predict", "import-table", str(first), "--out-dir", str(out), *IMPORT
    )
    assert code == 0, err
    assert json.loads((out / "a" / "results_scores_row00000.json").read_text())["results"] == {
        "gsm8k": {"alias": "gsm8k", "exact_match,none": 0.5}
    }
