"""End to end: tiny proxies scored through lm-eval, large-model accuracies from a table, then
`rbridge predict compare` through the CLI over whatever metrics the results files hold.

Five random GPT-2-style proxies (different seeds and widths) score two real GSM8K questions with
frontier-weighted traces on the fast path (`hf-rbridge`): the first through `rbridge eval` (the
console script's own entry point, in-process), the others through `lm_eval.simple_evaluate` and
EvaluationTracker as lm-eval's CLI saves them (each `rbridge eval` spends ~30 s indexing lm-eval's
4,000 stock task YAMLs). The "large model" accuracies of the five recipes are a CSV brought in
with `import-table`. For every metric of `rbridge_gsm8k` in the results files, the held-out R2
that chooses the form (5 points: 5-fold CV is leave-one-out, predictions clipped to [0, 1]) is
recomputed here with np.polyfit (the monotone quadratic with scipy's SLSQP, `reference_fits`) on
the same points and sklearn's KFold, to 1e-9 (1e-5 for SLSQP); the chosen form must be the best,
and the best metric the bold column of the Markdown's held-out table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from reference_fits import monotone_quadratic
from sklearn.model_selection import KFold
from tiny_models import build_tiny_lm, corpus_texts
from trace_fixtures import real_texts, record, write_jsonl

from rbridge_tasks.cli import main as rbridge

PROXIES = {"A": (0, 16), "B": (1, 16), "C": (2, 32), "D": (3, 32), "E": (4, 24)}
TARGETS = {"A": 0.31, "B": 0.42, "C": 0.38, "D": 0.55, "E": 0.47}
FORMS = {"linear": (np.asarray, 1), "quadratic": (np.asarray, 2), "logarithmic": (np.log, 1)}


def held_out_r2(x: np.ndarray, y: np.ndarray, form: str) -> float | None:
    """None where a fold's training points have fewer distinct scores than the form has
    parameters (the form is then skipped, e.g. a top-k accuracy over two questions)."""
    transform, degree = FORMS[form]
    if len(np.unique(x)) < 2:
        return None
    held = np.empty(len(x))
    for train, test in KFold(5, shuffle=True, random_state=0).split(x):
        if len(np.unique(x[train])) < degree + 1:
            return None
        if form == "quadratic":
            c0, c1, c2 = monotone_quadratic(x[train], y[train])
            held[test] = c0 + c1 * x[test] + c2 * x[test] ** 2
            continue
        t = transform(x)
        m, s = t[train].mean(), t[train].std()  # better conditioned for tiny spreads
        coef = np.polyfit((t[train] - m) / s, y[train], degree)
        held[test] = np.polyval(coef, (t[test] - m) / s)
    held = np.clip(held, 0.0, 1.0)
    return float(1 - np.sum((y - held) ** 2) / np.sum((y - y.mean()) ** 2))


def evaluate_and_save(model: Path, out: Path, metadata: dict) -> None:
    """The Python twin of `rbridge eval` (`rbridge_tasks.harness.api`), saved as lm-eval's CLI
    saves."""
    from lm_eval.loggers import EvaluationTracker

    from rbridge_tasks.harness.api import evaluate

    tracker = EvaluationTracker(output_path=str(out))
    done = evaluate(
        "hf-rbridge",
        ["rbridge_gsm8k"],
        model_args=f"pretrained={model}",
        metadata=metadata,
        evaluation_tracker=tracker,
        log_samples=True,
        batch_size=8,
        device="cpu",
    )
    samples = done.pop("samples")
    tracker.save_results_aggregated(results=done, samples=samples)
    tracker.save_results_samples(task_name="rbridge_gsm8k", samples=samples["rbridge_gsm8k"])


def test_compare_over_rbridge_eval_results(tmp_path, frontier_dir, data_dir, capsys):
    traces = write_jsonl(
        tmp_path / "gsm8k.jsonl",
        [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 2)],
    )
    texts = corpus_texts(400)
    results = tmp_path / "results"
    for k, (recipe, (seed, width)) in enumerate(PROXIES.items()):
        model = build_tiny_lm(tmp_path / f"proxy-{recipe}", seed=seed, n_embd=width, texts=texts)
        metadata = {"traces": str(traces), "data_dir": str(data_dir), "recipe": recipe}
        if k == 0:
            code = rbridge(
                ["eval", "--model", "hf-rbridge", "--model_args", f"pretrained={model}",
                 "--device", "cpu", "--tasks", "rbridge_gsm8k", "--batch_size", "8",
                 "--output_path", str(results / recipe), "--log_samples",
                 "--metadata", *(f"{key}={value}" for key, value in metadata.items())]
            )  # fmt: skip
            assert code == 0
        else:
            evaluate_and_save(model, results / recipe, metadata)
    table = tmp_path / "targets.csv"
    table.write_text(
        "model,recipe,acc\n" + "".join(f"big-{r},{r},{a}\n" for r, a in TARGETS.items())
    )
    code = rbridge(
        ["predict", "import-table", str(table), "--model-column", "model",
         "--metric", "acc=gsm8k_large:acc:higher", "--meta", "recipe=recipe",
         "--out-dir", str(results / "targets")]
    )  # fmt: skip
    assert code == 0
    capsys.readouterr()
    out = tmp_path / "cmp"
    code = rbridge(
        ["predict", "compare", "--results", str(results),
         "--benchmark", "gsm8k=rbridge_gsm8k:gsm8k_large:acc", "--join-on", "recipe",
         "--forms", "linear,quadratic,logarithmic", "--n-boot", "100", "--quiet",
         "--out-dir", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    payload = json.loads((out / "compare.json").read_text())

    # every metric of the results files, read with the json module only
    values: dict[str, dict[str, float]] = {}
    directions: dict[str, bool] = {}
    for recipe in PROXIES:
        (path,) = (results / recipe).rglob("results_*.json")
        data = json.loads(path.read_text())
        for key, value in data["results"]["rbridge_gsm8k"].items():
            if "," not in key or "_stderr," in key:
                continue
            metric, filt = key.split(",", 1)
            label = metric if filt == "none" else key
            values.setdefault(label, {})[recipe] = value
            directions[label] = data["higher_is_better"]["rbridge_gsm8k"][metric]
    assert "rbridge_nll" in values and "trace_nll" in values
    assert all(len(by_recipe) == len(PROXIES) for by_recipe in values.values())  # same metrics
    y = np.array([TARGETS[r] for r in PROXIES])
    expected = {}
    for label, by_recipe in values.items():
        x = np.array([by_recipe[r] for r in PROXIES], dtype=float)
        forms = [f for f in FORMS if f != "logarithmic" or np.all(x > 0)]
        r2 = {f: v for f in forms if (v := held_out_r2(x, y, f)) is not None}
        if not r2:  # no form can be fitted: listed as not compared, with the reason
            assert label not in payload["cells"]["gsm8k"]
            assert any(f"`{label}`" in line for line in payload["skipped"]), label
            continue
        cell = payload["cells"]["gsm8k"][label]
        assert [p["x"] for p in cell["points"]] == x.tolist()
        assert cell["higher_is_better"] is directions[label]
        assert sorted(cell["forms"]) == sorted(r2)
        for form, value in r2.items():
            got = cell["forms"][form]["r2"]
            tolerance = 1e-5 if form == "quadratic" else 1e-9
            assert got == pytest.approx(value, rel=tolerance, abs=1e-12), (label, form)
        assert r2[cell["form"]] >= max(r2.values()) - 1e-5
        assert cell["test_r2"] == cell["forms"][cell["form"]]["r2"]
        expected[label] = r2[cell["form"]]
    assert len(expected) >= 2
    assert sorted(payload["metrics"]) == sorted(payload["cells"]["gsm8k"])
    assert set(expected) <= set(payload["metrics"])
    best = max(expected, key=expected.get)
    reported = {m: c["test_r2"] for m, c in payload["cells"]["gsm8k"].items()}
    top = max(reported.values())
    assert reported[best] == pytest.approx(top, abs=1e-5)  # affine metrics tie
    assert reported[best] == pytest.approx(expected[best], rel=1e-5, abs=1e-12)
    row = next(
        line
        for line in (out / "compare.md").read_text().split("### Held-out R2")[1].splitlines()
        if line.startswith("| gsm8k |")
    )
    cells = dict(zip(payload["metrics"], row.strip("|").split("|")[1:], strict=True))
    bold = [m for m, c in cells.items() if c.strip().startswith("**")]
    assert bold == sorted(m for m, v in reported.items() if v == top)
    assert reported[bold[0]] == pytest.approx(expected[best], abs=1e-5)
    assert (out / "compare.png").stat().st_size > 10_000
