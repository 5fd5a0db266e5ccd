"""End to end through `rbridge predict` on real numbers from ../shared/data.

- Pythia (lm-eval 0.3 results JSON, read as they are): pythia-160m LAMBADA perplexity at each
  checkpoint as the proxy, pythia-12b ARC-Challenge / MMLU accuracy at the same checkpoint as the
  target (joined on `revision`); Pile vs deduplicated Pile as groups via a manifest, and a
  one-point group (410m -> 6.9b) skipped and named while the rest is kept.
- ObsScaling (CSV, imported to results files): per model family, the small model's HellaSwag
  accuracy against the 6-35B model's GSM8K accuracy (joined on family).
- OLMo ladder (CSVs, imported): 190M ARC-Challenge bits per byte -> 3B bits per byte -> 3B
  ARC-Challenge accuracy, the two-step ladder (joined on the compute multiple).

Every number checked is recomputed here from the raw files with numpy/scipy/csv, independently of
the predictors code (`reference_fits`); tolerances 1e-9 for closed-form fits, 1e-4 for scipy's
curve_fit and SLSQP.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
from reference_fits import monotone_quadratic, repeated_cv
from scipy.optimize import curve_fit
from scipy.special import expit
from sklearn.model_selection import KFold

from predictors.cli import main

N_BOOT = "150"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_outputs(out_dir: Path, command: str) -> dict:
    """JSON parses, Markdown has a table, PNG (when drawn) is a real image; returns the JSON."""
    payload = json.loads((out_dir / f"{command}.json").read_text())
    assert "|---" in (out_dir / f"{command}.md").read_text()
    png = out_dir / f"{command}.png"
    if png.exists():
        assert png.read_bytes()[:8] == PNG_MAGIC
        height, width, _ = matplotlib.image.imread(png).shape
        assert height > 300 and width > 600
    assert not list(out_dir.glob(".*"))  # no temp files left behind by the atomic writes
    return payload


def pythia_values(pythia: Path, size: str, task: str, metric: str) -> dict[str, float]:
    """{revision: value}, read with the json module only."""
    values = {}
    for path in (pythia / f"pythia-{size}" / "zero-shot").glob("*.json"):
        data = json.loads(path.read_text())
        revision = data["config"]["model_args"].split("revision=")[1]
        results = data["results"]
        if task.endswith("*"):
            values[revision] = np.mean(
                [v[metric] for k, v in results.items() if k.startswith(task[:-1])]
            )
        else:
            values[revision] = results[task][metric]
    return values


PYTHIA_ARGS = [
    "--pattern",
    "*.json",
    "--proxy-task",
    "lambada_openai",
    "--proxy-metric",
    "ppl",
    "--proxy-where",
    "model=*-160m",
    "--target-where",
    "model=*-12b",
    "--join-on",
    "revision",
    "--n-boot",
    N_BOOT,
    "--quiet",
]


@pytest.fixture(scope="module")
def pythia_fit(pythia, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pythia_fit")
    code = main(
        [
            "fit",
            "--results",
            str(pythia / "pythia-160m" / "zero-shot"),
            str(pythia / "pythia-12b" / "zero-shot"),
            *PYTHIA_ARGS,
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--out-dir",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_fit_pythia_arc_challenge(pythia, pythia_fit):
    payload = assert_outputs(pythia_fit, "fit")
    proxy = pythia_values(pythia, "160m", "lambada_openai", "ppl")
    target = pythia_values(pythia, "12b", "arc_challenge", "acc")
    keys = [p["key"] for p in payload["points"]]
    assert sorted(keys) == sorted(proxy) and len(keys) == 27
    x = np.array([proxy[k] for k in keys])
    y = np.array([target[k] for k in keys])
    assert [p["x"] for p in payload["points"]] == x.tolist()
    assert [p["y"] for p in payload["points"]] == y.tolist()
    # The default: the form with the best pooled held-out R2, mean over 5-fold CV with seeds 0-4
    # (predictions clipped to [0, 1]); every candidate's figures recomputed independently.
    forms = payload["protocol"]["forms"]
    assert sorted(forms) == sorted(["linear", "quadratic", "exponential", "logarithmic", "sigmoid"])
    expected = {form: repeated_cv(form, x, y) for form in forms}
    for form, reference in expected.items():
        assert forms[form]["r2"] == pytest.approx(reference["r2"], rel=1e-4), form
        assert forms[form]["mae"] == pytest.approx(reference["mae"], rel=1e-4), form
        assert forms[form]["repeats"] == 5
        assert forms[form]["r2_min"] <= forms[form]["r2"] <= forms[form]["r2_max"]
    assert payload["protocol"]["select"] == "cv_r2"
    assert payload["form"] == "logarithmic" == max(expected, key=lambda f: expected[f]["r2"])
    assert payload["skill"] == {"cv_r2": forms["logarithmic"]["r2"], "no_skill": False,
                                "message": None}  # fmt: skip
    b, a = np.polyfit(np.log(x), y, 1)
    assert (payload["params"]["a"], payload["params"]["b"]) == pytest.approx((a, b), rel=1e-9)
    held_out = np.empty(len(x))
    for train, test in KFold(5, shuffle=True, random_state=0).split(x):
        slope, intercept = np.polyfit(np.log(x[train]), y[train], 1)
        held_out[test] = intercept + slope * np.log(x[test])
    assert [p["cv_prediction"] for p in payload["points"]] == pytest.approx(held_out, rel=1e-9)
    curve = payload["curve"]
    assert curve["y"] == pytest.approx(a + b * np.log(curve["x"]), rel=1e-9)
    assert all(lo <= hi for lo, hi in zip(curve["lower"], curve["upper"], strict=True))
    assert payload["model"]["format"] == "rbridge-fit/2"
    assert payload["warnings"] == [] and payload["join"]["n_pairs"] == 27


def test_fit_pythia_mmlu_average_as_json(pythia, capsys):
    code, out, _ = run(
        [
            "fit",
            "--results",
            str(pythia / "pythia-160m" / "zero-shot"),
            str(pythia / "pythia-12b" / "zero-shot"),
            *PYTHIA_ARGS,
            "--target-task",
            "hendrycksTest-*",
            "--target-metric",
            "acc",
            "--form",
            "linear",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    payload = json.loads(out)
    target = pythia_values(pythia, "12b", "hendrycksTest-*", "acc")
    assert [p["y"] for p in payload["points"]] == pytest.approx(
        [target[p["key"]] for p in payload["points"]], rel=1e-12
    )
    assert len(payload["join"]["target"]["tasks"]) == 57
    x = [p["x"] for p in payload["points"]]
    slope, intercept = np.polyfit(x, [p["y"] for p in payload["points"]], 1)
    assert (payload["params"]["slope"], payload["params"]["intercept"]) == pytest.approx(
        (slope, intercept), rel=1e-9
    )


def test_evaluate_pythia_groups_with_a_manifest(pythia, tmp_path, capsys):
    lines = ["path,role,key,group"]
    for variant, suffix in (("standard", ""), ("deduped", "-deduped")):
        for size, role in (("160m", "proxy"), ("12b", "target")):
            for path in sorted((pythia / f"pythia-{size}{suffix}" / "zero-shot").glob("*.json")):
                step = path.stem.split("_")[-1]
                lines.append(f"{path},{role},{variant}-{step},{variant}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "eval"
    code, text, _ = run(
        [
            "evaluate",
            "--manifest",
            str(manifest),
            "--proxy-task",
            "lambada_openai",
            "--proxy-metric",
            "ppl",
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--form",
            "logarithmic",
            "--n-boot",
            N_BOOT,
            "--quiet",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0 and "Leave one group out" in text and "Zero-shot transfer" in text
    payload = assert_outputs(out, "evaluate")
    assert payload["join"]["n_pairs"] == 54
    data = {}
    for variant, suffix in (("standard", ""), ("deduped", "-deduped")):
        px = pythia_values(pythia, f"160m{suffix}", "lambada_openai", "ppl")
        ty = pythia_values(pythia, f"12b{suffix}", "arc_challenge", "acc")
        steps = sorted(px)
        data[variant] = (np.array([px[s] for s in steps]), np.array([ty[s] for s in steps]))
    for row in payload["transfer"]:
        (xa, ya), (xb, yb) = data[row["fit_on"]], data[row["test_on"]]
        b, a = np.polyfit(np.log(xa), ya, 1)
        pred = a + b * np.log(xb)
        assert row["mae"] == pytest.approx(np.mean(np.abs(yb - pred)), rel=1e-9)
        assert row["r2"] == pytest.approx(
            1 - np.sum((yb - pred) ** 2) / np.sum((yb - yb.mean()) ** 2), rel=1e-9
        )
    logo = {g["group"]: g for g in payload["leave_one_group_out"]["groups"]}
    assert logo["deduped"]["mae"] == pytest.approx(
        next(r["mae"] for r in payload["transfer"] if r["test_on"] == "deduped"), rel=1e-12
    )
    assert payload["extrapolation"]["n_test"] == round(0.2 * 54)


def test_rank_pythia_checkpoints(pythia, tmp_path, capsys):
    out = tmp_path / "rank"
    code, _, _ = run(
        [
            "rank",
            "--results",
            str(pythia / "pythia-160m" / "zero-shot"),
            str(pythia / "pythia-12b" / "zero-shot"),
            *PYTHIA_ARGS,
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--n-boot",
            "300",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    payload = assert_outputs(out, "rank")
    proxy = pythia_values(pythia, "160m", "lambada_openai", "ppl")
    target = pythia_values(pythia, "12b", "arc_challenge", "acc")
    steps = sorted(proxy)
    agree = decided = 0.0
    for i, s in enumerate(steps):
        for t in steps[i + 1 :]:
            if target[s] == target[t]:
                continue
            decided += 1
            proxy_says = proxy[s] < proxy[t]  # perplexity: lower is better
            agree += 0.5 if proxy[s] == proxy[t] else float(proxy_says == (target[s] > target[t]))
    assert payload["decision_accuracy"] == pytest.approx(agree / decided, abs=1e-12)
    assert payload["n_pairs"] == decided
    px, ty = [-proxy[s] for s in steps], [target[s] for s in steps]
    assert payload["kendall_tau_b"] == pytest.approx(
        scipy.stats.kendalltau(px, ty).statistic, abs=1e-9
    )
    assert payload["spearman"] == pytest.approx(scipy.stats.spearmanr(px, ty).statistic, abs=1e-9)
    interval = payload["interval"]
    assert interval["lower"] <= payload["decision_accuracy"] <= interval["upper"]
    assert len(payload["pairs"]) == 27 * 26 // 2
    probabilities = [p["p_a_beats_b"] for p in payload["pairs"]]
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_leaderboard_and_gate_reuse_the_saved_fit(pythia, pythia_fit, tmp_path, capsys):
    fit = json.loads((pythia_fit / "fit.json").read_text())
    a, b = fit["params"]["a"], fit["params"]["b"]
    low, high = min(p["x"] for p in fit["points"]), max(p["x"] for p in fit["points"])
    out = tmp_path / "board"
    code, _, err = run(
        [
            "leaderboard",
            "--fit",
            str(pythia_fit / "fit.json"),
            "--results",
            str(pythia / "pythia-410m" / "zero-shot"),
            str(pythia / "pythia-70m" / "zero-shot" / "70m_step143000.json"),
            "--pattern",
            "*.json",
            "--where",
            "revision=step1[0-4]3000",
            "--quiet",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    payload = assert_outputs(out, "leaderboard")
    entries = payload["entries"]
    assert len(entries) == 6 and [e["rank"] for e in entries] == list(range(1, 7))
    for entry in entries:
        assert entry["predicted"] == pytest.approx(a + b * np.log(entry["x"]), rel=1e-9)
        assert entry["extrapolated"] == (not low <= entry["x"] <= high)
        assert entry["lower"] <= entry["upper"]
    assert [e["predicted"] for e in entries] == sorted(
        (e["predicted"] for e in entries), reverse=True
    )
    assert any(e["extrapolated"] for e in entries) and "extrapolates" in err
    assert payload["warnings"]
    step = pythia / "pythia-160m" / "zero-shot"
    gate = [
        "gate",
        "--fit",
        str(pythia_fit / "fit.json"),
        "--baseline",
        str(step / "160m_step143000.json"),
        "--quiet",
        "--json",
    ]
    lenient = ["--rule", "candidate-interval"]
    code, out_text, _ = run(
        [*gate, "--candidate", str(step / "160m_step133000.json"), *lenient], capsys
    )
    passed = json.loads(out_text)
    assert code == 0 and passed["passed"]
    assert passed["baseline"]["predicted"] == pytest.approx(
        a + b * np.log(passed["baseline"]["x"]), rel=1e-9
    )
    # The default rule on the paired difference: the same small predicted drop is well inside
    # the scatter of unseen checkpoints around the curve (each run's own), so not surely worse.
    code, out_text, _ = run([*gate, "--candidate", str(step / "160m_step133000.json")], capsys)
    paired = json.loads(out_text)
    difference = paired["difference"]
    assert code == 0 and difference["lower"] < difference["estimate"] < 0 < difference["upper"]
    assert difference["estimate"] == pytest.approx(
        b * (np.log(paired["candidate"]["x"]) - np.log(paired["baseline"]["x"])), rel=1e-9
    )
    code, out_text, _ = run(
        [*gate, "--candidate", str(step / "160m_step512.json"), *lenient], capsys
    )
    failed = json.loads(out_text)
    assert code == 1 and not failed["passed"]
    assert failed["baseline"]["predicted"] > failed["candidate"]["upper"]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_obsscaling_gsm8k_from_family_proxies(data_dir, tmp_path, capsys):
    table = data_dir / "obsscaling" / "base_llm_benchmark_eval.csv"
    imported = tmp_path / "imported"
    code, _, _ = run(
        [
            "import-table",
            str(table),
            "--model-column",
            "Model",
            "--metric",
            "HellaSwag=hellaswag:acc",
            "--metric",
            "GSM8K=gsm8k:exact_match",
            "--meta",
            "Model Family=family",
            "--meta",
            "Model Size (B)=size_b",
            "--out-dir",
            str(imported),
        ],
        capsys,
    )
    assert code == 0
    # Independent choice from the CSV: per family, the largest model <= 3B is the proxy and the
    # smallest 6-35B model with a GSM8K score is the target.
    rows = csv_rows(table)
    expected, lines = {}, ["path,role,key"]
    for family in sorted({r["Model Family"] for r in rows}):
        members = [r for r in rows if r["Model Family"] == family]
        small = [r for r in members if float(r["Model Size (B)"]) <= 3 and r["HellaSwag"]]
        large = [r for r in members if 6 <= float(r["Model Size (B)"]) <= 35 and r["GSM8K"]]
        if not small or not large:
            continue
        proxy = max(small, key=lambda r: float(r["Model Size (B)"]))
        target = min(large, key=lambda r: float(r["Model Size (B)"]))
        expected[family] = (float(proxy["HellaSwag"]), float(target["GSM8K"]))
        for role, row in (("proxy", proxy), ("target", target)):
            path = next(imported.rglob(f"results_*_row{rows.index(row):05d}.json"))
            lines.append(f"{path},{role},{family}")
    manifest = tmp_path / "families.csv"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fit"
    code, text, _ = run(
        [
            "fit",
            "--manifest",
            str(manifest),
            "--proxy-task",
            "hellaswag",
            "--proxy-metric",
            "acc",
            "--target-task",
            "gsm8k",
            "--target-metric",
            "exact_match",
            "--forms",
            "linear,quadratic,exponential,sigmoid",
            "--n-boot",
            N_BOOT,
            "--quiet",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0 and "gsm8k" in text
    payload = assert_outputs(out, "fit")
    assert len(expected) == payload["join"]["n_pairs"] == 20
    for point in payload["points"]:
        assert (point["x"], point["y"]) == expected[point["key"]]
    x = np.array([expected[p["key"]][0] for p in payload["points"]])
    y = np.array([expected[p["key"]][1] for p in payload["points"]])
    forms = payload["protocol"]["forms"]
    expected_cv = {form: repeated_cv(form, x, y) for form in forms}
    for form, reference in expected_cv.items():
        # two optimisers' convergence: R2 to 1e-4, a tenth of the gap between forms here
        assert forms[form]["r2"] == pytest.approx(reference["r2"], abs=1e-4), form
    assert payload["form"] == "quadratic" == max(expected_cv, key=lambda f: expected_cv[f]["r2"])
    # The paper's free parabola turns inside the proxy range; the chosen one is kept monotone,
    # the constrained least-squares optimum (scipy's SLSQP).
    free = np.polyfit(x, y, 2)
    assert x.min() < -free[1] / (2 * free[0]) < x.max()
    coef = monotone_quadratic(x, y)[::-1]
    assert [payload["params"][c] for c in ("c2", "c1", "c0")] == pytest.approx(coef, rel=1e-5)
    assert payload["turns_at"] is None
    grid = np.linspace(x.min(), x.max(), 1001)
    assert np.all(np.diff(np.polyval(coef, grid)) >= -1e-12)
    # Leaderboard of every small model in the table (imported rows have no revision).
    code, _, _ = run(
        [
            "leaderboard",
            "--fit",
            str(out / "fit.json"),
            "--results",
            str(imported),
            "--where",
            "size_b<=3",
            "--quiet",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    board = assert_outputs(out, "leaderboard")
    small = {
        r["Model"]: float(r["HellaSwag"])
        for r in rows
        if float(r["Model Size (B)"]) <= 3 and r["HellaSwag"]
    }
    assert {e["label"] for e in board["entries"]} == set(small)
    for entry in board["entries"]:
        assert entry["predicted"] == pytest.approx(
            np.clip(np.polyval(coef, small[entry["label"]]), 0, 1), rel=1e-5, abs=1e-9
        )


def test_olmo_ladder_two_step_fit(data_dir, tmp_path, capsys):
    imported = tmp_path / "olmo"
    bpb = "eval/downstream_bpb/arc_challenge_test_rc_5shot_bpb"
    acc = "eval/downstream/arc_challenge_test_rc_5shot_len_norm"
    files = sorted((data_dir / "olmo_ladder").glob("190M-*xC*.csv")) + sorted(
        (data_dir / "olmo_ladder").glob("3B-*xC*.csv")
    )
    for path in files:
        size, recipe = path.stem.split("-", 1)
        code, _, _ = run(
            [
                "import-table",
                str(path),
                "--revision-column",
                "_step",
                "--rows",
                "last",
                "--metric",
                f"{bpb}=arc_challenge:bpb",
                "--metric",
                f"{acc}=arc_challenge:acc_norm",
                "--set",
                f"size={size}",
                "--set",
                f"recipe={recipe}",
                "--out-dir",
                str(imported),
            ],
            capsys,
        )
        assert code == 0
    out = tmp_path / "fit"
    code, _, _ = run(
        [
            "fit",
            "--results",
            str(imported),
            "--proxy-task",
            "arc_challenge",
            "--proxy-metric",
            "bpb",
            "--proxy-where",
            "size=190M",
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc_norm",
            "--target-where",
            "size=3B",
            "--form",
            "ladder",
            "--intermediate-metric",
            "bpb",
            "--chance",
            "0.25",
            "--n-boot",
            N_BOOT,
            "--quiet",
            "--out-dir",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    payload = assert_outputs(out, "fit")
    final = {}
    for path in files:
        last = csv_rows(path)[-1]
        final[path.stem] = (float(last[bpb]), float(last[acc]))
    keys = [p["key"] for p in payload["points"]]
    assert keys == ["0.5xC", "1xC", "1xC-rerun", "2xC", "5xC", "10xC"]
    x = np.array([final[f"190M-{k}"][0] for k in keys])
    z = np.array([final[f"3B-{k}"][0] for k in keys])
    y = np.array([final[f"3B-{k}"][1] for k in keys])
    assert [p["y"] for p in payload["points"]] == y.tolist()
    step1 = np.polyfit(x, z, 1)
    (k, x0), _ = curve_fit(
        lambda v, k, x0: 0.25 + 0.75 * expit(k * (v - x0)), z, y, p0=(-5.0, 1.0), maxfev=20000
    )
    manual = 0.25 + 0.75 * expit(k * (np.polyval(step1, x) - x0))
    assert [p["fitted"] for p in payload["points"]] == pytest.approx(manual, rel=1e-4)
    assert payload["params"]["step1"]["slope"] == pytest.approx(step1[0], rel=1e-9)


def test_a_one_point_group_is_skipped_and_named(pythia, tmp_path, capsys):
    lines = ["path,role,key,group"]
    data = {}
    for variant, suffix in (("standard", ""), ("deduped", "-deduped")):
        xs, ys = [], []
        for path in sorted((pythia / f"pythia-160m{suffix}" / "zero-shot").glob("*.json")):
            step = path.stem.split("_")[-1]
            target = pythia / f"pythia-12b{suffix}" / "zero-shot" / f"12b{suffix}_{step}.json"
            lines += [f"{path},proxy,{variant}-{step},{variant}"]
            lines += [f"{target},target,{variant}-{step},{variant}"]
            xs.append(json.loads(path.read_text())["results"]["lambada_openai"]["ppl"])
            ys.append(json.loads(target.read_text())["results"]["arc_challenge"]["acc"])
        data[variant] = (np.array(xs), np.array(ys))
    lines.append(f"{pythia}/pythia-410m/zero-shot/410m_step143000.json,proxy,solo-1,solo")
    lines.append(f"{pythia}/pythia-6.9b/zero-shot/6.9b_step143000.json,target,solo-1,solo")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "evaluate",
            "--manifest",
            str(manifest),
            "--proxy-task",
            "lambada_openai",
            "--proxy-metric",
            "ppl",
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--form",
            "logarithmic",
            "--n-boot",
            "50",
            "--quiet",
            "--json",
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["join"]["n_pairs"] == len(data["standard"][0]) + len(data["deduped"][0]) + 1
    assert [(s["group"], s["n"]) for s in payload["skipped_groups"]] == [("solo", 1)]
    assert any("'solo'" in note and "skipped" in note for note in payload["notes"])
    assert payload["cv_points"] and "extrapolation" in payload  # every other result kept
    assert {g["group"] for g in payload["leave_one_group_out"]["groups"]} == {"standard", "deduped"}
    assert len(payload["transfer"]) == 2
    for row in payload["transfer"]:
        (xa, ya), (xb, yb) = data[row["fit_on"]], data[row["test_on"]]
        b, a = np.polyfit(np.log(xa), ya, 1)
        assert row["mae"] == pytest.approx(np.mean(np.abs(yb - (a + b * np.log(xb)))), rel=1e-9)
