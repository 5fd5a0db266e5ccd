"""`rbridge predict gate` on the Pythia fit: the default rule fails clearly worse checkpoints,
and is no surer than the scatter of the ladder's points around its curve allows.

The fit: pythia-160m LAMBADA perplexity at each checkpoint -> pythia-12b ARC-Challenge accuracy at
the same checkpoint (lm-eval 0.3 files, read as they are). The predicted difference is recomputed
here from the fit's saved parameters (logarithmic form, y = a + b ln x) to 1e-9; the scatter of
unseen points around the curve from an independent 5-fold CV loop (numpy, seeds 0-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import KFold

from predictors.cli import main
from rbridge_tasks.cli import main as rbridge_main


@pytest.fixture(scope="module")
def fit_file(pythia: Path, tmp_path_factory) -> Path:
    return make_fit(pythia, tmp_path_factory.mktemp("gate_fit"), "logarithmic")


def make_fit(pythia: Path, out: Path, form: str) -> Path:
    code = main(
        [
            "fit",
            "--results",
            str(pythia / "pythia-160m" / "zero-shot"),
            str(pythia / "pythia-12b" / "zero-shot"),
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
            "--target-task",
            "arc_challenge",
            "--target-metric",
            "acc",
            "--join-on",
            "revision",
            "--form",
            form,
            "--n-boot",
            "1000",
            "--quiet",
            "--out-dir",
            str(out),
        ]
    )
    assert code == 0
    return out / "fit.json"


def gate(fit_file: Path, baseline: Path, candidate: Path, capsys, *extra: str) -> tuple[int, dict]:
    """Through `rbridge`, which turns bad input into one line on stderr and exit 2."""
    code = rbridge_main(
        [
            "predict",
            "gate",
            "--fit",
            str(fit_file),
            "--baseline",
            str(baseline),
            "--candidate",
            str(candidate),
            "--quiet",
            "--json",
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {"stderr": err}


def ppl(path: Path) -> float:
    return json.loads(path.read_text())["results"]["lambada_openai"]["ppl"]


def held_out_scatter_width(fit_file: Path) -> float:
    """The 90% width of the difference of two independent held-out residuals (normal
    approximation), from an independent CV loop over the fit's points."""
    points = json.loads(fit_file.read_text())["model"]["points"]
    x, y = np.log(points["x"]), np.array(points["y"])
    residuals = []
    for seed in range(5):
        for train, test in KFold(5, shuffle=True, random_state=seed).split(x):
            slope, intercept = np.polyfit(x[train], y[train], 1)
            residuals += list(y[test] - np.clip(intercept + slope * x[test], 0, 1))
    return 2 * 1.645 * np.sqrt(2) * np.std(residuals)


@pytest.mark.parametrize("step", ["step1", "step8"])
def test_default_rule_fails_a_clearly_worse_checkpoint(pythia, fit_file, step, capsys):
    runs = pythia / "pythia-160m" / "zero-shot"
    baseline, candidate = runs / "160m_step143000.json", runs / f"160m_{step}.json"
    code, payload = gate(fit_file, baseline, candidate, capsys)
    params = json.loads(fit_file.read_text())["params"]
    expected = params["b"] * (np.log(ppl(candidate)) - np.log(ppl(baseline)))
    assert payload["rule"] == "difference"
    assert payload["difference"]["estimate"] == pytest.approx(expected, rel=1e-9)
    assert payload["difference"]["upper"] < 0 and expected < 0
    assert code == 1 and not payload["passed"]
    width = payload["difference"]["upper"] - payload["difference"]["lower"]
    assert width > 0.8 * held_out_scatter_width(fit_file)
    # a tolerance wider than the whole drop lets it through: the interval is no longer below it
    tolerance = str(-payload["difference"]["lower"] + 0.01)
    code, payload = gate(fit_file, baseline, candidate, capsys, "--tolerance", tolerance)
    assert code == 0 and payload["passed"]


def test_a_small_predicted_drop_is_within_the_ladders_scatter(pythia, fit_file, capsys):
    """step3000 is predicted 0.0099 below step143000, while unseen checkpoints scatter about
    0.03 around the curve: the gate cannot be sure, and says PASS (not surely worse)."""
    runs = pythia / "pythia-160m" / "zero-shot"
    code, payload = gate(
        fit_file, runs / "160m_step143000.json", runs / "160m_step3000.json", capsys
    )
    difference = payload["difference"]
    assert code == 0 and payload["passed"]
    assert -0.02 < difference["estimate"] < 0 < difference["upper"]
    assert difference["upper"] - difference["lower"] > 0.8 * held_out_scatter_width(fit_file)


def test_a_checkpoint_passes_against_itself(pythia, fit_file, capsys):
    same = pythia / "pythia-160m" / "zero-shot" / "160m_step143000.json"
    code, payload = gate(fit_file, same, same, capsys)
    assert code == 0 and payload["passed"]
    assert payload["difference"]["estimate"] == 0.0
    assert payload["difference"]["lower"] < 0 < payload["difference"]["upper"]  # score noise


def test_lenient_rule_is_still_available(pythia, fit_file, capsys):
    runs = pythia / "pythia-160m" / "zero-shot"
    code, payload = gate(
        fit_file,
        runs / "160m_step143000.json",
        runs / "160m_step512.json",
        capsys,
        "--rule",
        "candidate-interval",
    )
    assert code == 1 and payload["baseline"]["predicted"] > payload["candidate"]["upper"]


def test_missing_stderr_is_not_zero_noise(pythia, fit_file, tmp_path, capsys):
    runs = pythia / "pythia-160m" / "zero-shot"
    data = json.loads((runs / "160m_step1.json").read_text())
    data["results"]["lambada_openai"]["ppl_stderr"] = "N/A"  # what lm-eval writes without one
    candidate = tmp_path / "160m_step1.json"
    candidate.write_text(json.dumps(data))
    code, payload = gate(fit_file, runs / "160m_step143000.json", candidate, capsys)
    assert code == 2
    err = payload["stderr"]
    assert len(err.strip().splitlines()) == 1
    assert "no stderr" in err and "--no-score-noise" in err and str(candidate) in err
    code, payload = gate(
        fit_file, runs / "160m_step143000.json", candidate, capsys, "--no-score-noise"
    )
    assert code == 1 and payload["difference"]["upper"] < 0


def test_accuracy_intervals_stay_within_0_and_1(pythia, tmp_path, capsys):
    runs = pythia / "pythia-160m" / "zero-shot"
    fit = make_fit(pythia, tmp_path, "linear")
    capsys.readouterr()
    # a diverged run: perplexity far beyond the fitted range, where the line is below zero
    data = json.loads((runs / "160m_step1.json").read_text())
    data["results"]["lambada_openai"]["ppl"] = 5e7
    far = tmp_path / "160m_diverged.json"
    far.write_text(json.dumps(data))
    params = json.loads(fit.read_text())["params"]
    unclipped = params["intercept"] + params["slope"] * 5e7
    code, payload = gate(fit, runs / "160m_step143000.json", far, capsys)
    assert code == 1
    assert unclipped < -0.5  # the line's own value: not an accuracy
    assert payload["candidate"]["predicted"] == 0.0  # clipped where the prediction is made
    assert payload["candidate"]["lower"] == 0.0 == payload["candidate"]["upper"]
    assert payload["candidate"]["extrapolated"] and payload["candidate"]["noise_outside_share"] == 1
    assert 0.0 <= payload["baseline"]["lower"] <= payload["baseline"]["upper"] <= 1.0
    difference = payload["difference"]
    assert difference["estimate"] == pytest.approx(-payload["baseline"]["predicted"], rel=1e-12)
    assert -1.0 <= difference["lower"] <= difference["upper"] <= 0.0
