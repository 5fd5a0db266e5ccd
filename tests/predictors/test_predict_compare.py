"""`rbridge predict compare` on real data, and the accuracy-targets table.

OLMo ladder (../shared/data/olmo_ladder, imported with `import-table`): the 190M models' final
ARC-Challenge and CSQA accuracy, bits per byte, probability and log-probability of the correct
answer, and C4 loss, at 0.5-10x Chinchilla, compete as proxies of the 3B models' accuracy at the
same compute multiple. Pythia (lm-eval 0.3 files, read as they are): pythia-160m checkpoints'
LAMBADA perplexity and accuracy against pythia-12b's LAMBADA accuracy, joined on revision.
Every number is recomputed here from the raw CSV/JSON with numpy/scipy/sklearn's KFold
(`reference_fits`): held-out R2 and MAE of every form under 5-fold CV repeated with seeds 0-4,
predictions clipped to [0, 1]; 1e-9 for polyfit's forms, 1e-4 for the optimisers' (curve_fit,
SLSQP against our least squares).

End to end: five random GPT-2-style proxies (different seeds and widths) score two real GSM8K
questions with frontier-weighted traces on the fast path (`hf-rbridge`): the first through
`rbridge eval` (the console script's own entry point, in-process), the others through
`lm_eval.simple_evaluate` and EvaluationTracker as lm-eval's CLI saves them (each `rbridge eval`
spends ~30 s indexing lm-eval's 4,000 stock task YAMLs). The "large model" accuracies of the five
recipes are a CSV brought in with `import-table`. For every metric of `rbridge_gsm8k` in the
results files, the held-out R2 that chooses the form (5 points: 5-fold CV is leave-one-out,
predictions clipped to [0, 1]) is recomputed here with np.polyfit (the monotone quadratic with
scipy's SLSQP, `reference_fits`) on the same points and sklearn's KFold, to 1e-9 (1e-5 for
SLSQP); the chosen form must be the best, and the best metric the bold column of the Markdown's
held-out table.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from reference_fits import (
    assert_monotone,
    last_row,
    monotone_quadratic,
    repeated_cv,
    repeated_train_r2,
)
from sklearn.model_selection import KFold
from tiny_models import build_tiny_lm, corpus_texts
from trace_fixtures import real_texts, record, write_jsonl

from predictors.cli import main
from predictors.data import targets
from predictors.reports.compare import Benchmark
from rbridge_tasks.cli import main as rbridge

README = Path(__file__).resolve().parents[2] / "README.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OLMO_METRICS = {  # CSV column pattern -> (metric, higher is better)
    "eval/downstream/{}_rc_5shot_len_norm": ("acc_len_norm", True),
    "eval/downstream_bpb/{}_rc_5shot_bpb": ("bpb", False),
    "eval/downstream_soft/{}_rc_5shot_soft": ("correct_prob", True),
    "eval/downstream_soft_log/{}_rc_5shot_soft_log": ("correct_logprob", True),
    "eval/c4_en-validation/CrossEntropyLoss": ("c4_loss", False),
}
OLMO_TASKS = {"arc_challenge": "arc_challenge_test", "csqa": "csqa_val"}


@pytest.fixture(scope="module")
def olmo(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("olmo_import")
    for path in sorted((data_dir / "olmo_ladder").glob("*-*xC*.csv")):
        size, recipe = path.stem.split("-", 1)
        if size not in ("190M", "3B"):
            continue
        specs = []
        for name, column in OLMO_TASKS.items():
            for pattern, (metric, higher) in OLMO_METRICS.items():
                direction = "higher" if higher else "lower"
                specs += ["--metric", f"{pattern.format(column)}=olmo_{name}:{metric}:{direction}"]
        code = main(
            ["import-table", str(path), "--revision-column", "_step", "--rows", "last", *specs,
             "--set", f"size={size}", "--set", f"recipe={recipe}", "--out-dir", str(out)]
        )  # fmt: skip
        assert code == 0
    return out


def olmo_compare(results: Path, out: Path, capsys) -> dict:
    benchmarks = [f"--benchmark={n}=olmo_{n}:olmo_{n}:acc_len_norm" for n in OLMO_TASKS]
    code = main(
        ["compare", "--results", str(results), "--proxy-where", "size=190M",
         "--target-where", "size=3B", "--n-boot", "200", "--quiet", "--out-dir", str(out),
         *benchmarks]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    return json.loads((out / "compare.json").read_text())


def decision_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """x, y oriented so that higher is better; target ties left out, proxy ties count 1/2."""
    credit = []
    for i, j in itertools.combinations(range(len(x)), 2):
        if y[i] == y[j]:
            continue
        credit.append(0.5 if x[i] == x[j] else float((x[i] > x[j]) == (y[i] > y[j])))
    return float(np.mean(credit))


def tolerance(form: str) -> dict[str, float]:
    return {"rel": 1e-9} if form in ("linear", "logarithmic") else {"abs": 1e-4}


def test_olmo_ladder_compare_matches_independent_computation(olmo, data_dir, tmp_path, capsys):
    payload = olmo_compare(olmo, tmp_path / "out", capsys)
    ladder = data_dir / "olmo_ladder"
    recipes = ["0.5xC", "1xC", "1xC-rerun", "2xC", "5xC", "10xC"]
    assert payload["metrics"] == sorted(m for m, _ in OLMO_METRICS.values())
    assert payload["missing"] == [] and payload["skipped"] == []
    best_r2 = {}
    for name, column in OLMO_TASKS.items():
        target_col = f"eval/downstream/{column}_rc_5shot_len_norm"
        y = np.array([float(last_row(ladder / f"3B-{r}.csv")[target_col]) for r in recipes])
        reported = {}
        for pattern, (metric, higher) in OLMO_METRICS.items():
            cell = payload["cells"][name][metric]
            col = pattern.format(column)
            x = np.array([float(last_row(ladder / f"190M-{r}.csv")[col]) for r in recipes])
            assert [p["key"] for p in cell["points"]] == recipes
            assert [p["x"] for p in cell["points"]] == x.tolist()
            assert [p["y"] for p in cell["points"]] == y.tolist()
            expected = {}
            for form in ("linear", "quadratic", "exponential", "logarithmic", "sigmoid"):
                if form == "logarithmic" and np.any(x <= 0):
                    assert form in cell["forms_skipped"]
                    continue
                expected[form] = repeated_cv(form, x, y)
                got = cell["forms"][form]
                assert got["r2"] == pytest.approx(expected[form]["r2"], **tolerance(form))
                assert got["mae"] == pytest.approx(expected[form]["mae"], **tolerance(form))
            # the chosen form has the best held-out R2 (ties within the optimisers' tolerance)
            best = max(expected[f]["r2"] for f in expected)
            assert expected[cell["form"]]["r2"] >= best - 2e-4, (name, metric)
            forms = cell["forms"]
            assert cell["form"] == max(forms, key=lambda f: forms[f]["r2"])
            assert cell["test_r2"] == forms[cell["form"]]["r2"]
            assert cell["test_mae"] == forms[cell["form"]]["mae"]
            assert cell["train_r2"] == pytest.approx(
                repeated_train_r2(cell["form"], x, y), **tolerance(cell["form"])
            )
            assert cell["no_skill"] is (cell["test_r2"] <= 0)
            # no chosen curve turns inside the fitted range; every prediction is an accuracy
            assert cell["turns_at"] is None
            assert_monotone(cell["curve"]["y"])
            assert all(0 <= p["cv_prediction"] <= 1 for p in cell["points"])
            gx = x if higher else -x
            assert cell["higher_is_better"] is higher
            assert cell["decision_accuracy"]["value"] == pytest.approx(
                decision_accuracy(gx, y), abs=1e-12
            )
            tau = scipy.stats.kendalltau(gx, y).statistic
            assert cell["kendall_tau"]["value"] == pytest.approx(tau, abs=1e-12)
            for key in ("decision_accuracy", "kendall_tau"):
                interval = cell[key]
                assert interval["lower"] <= interval["value"] + 1e-12
                assert interval["value"] <= interval["upper"] + 1e-12
            reported[metric] = cell["test_r2"]
        best_r2[name] = max(reported, key=reported.get)
    average = {
        m: np.mean([payload["cells"][b][m]["test_r2"] for b in OLMO_TASKS])
        for m in payload["metrics"]
    }
    for metric, value in average.items():
        assert payload["average"][metric]["test_r2"]["value"] == pytest.approx(value, rel=1e-12)
    # Markdown: Table 2's shape, held-out figures first, the best of each row in bold
    markdown = (tmp_path / "out" / "compare.md").read_text()
    assert markdown.index("### Held-out R2") < markdown.index("### Train R2")
    table = markdown.split("### Held-out R2")[1].split("###")[0]
    header = next(line for line in table.splitlines() if line.startswith("| benchmark"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == ["benchmark", *payload["metrics"]]
    for name, best in [*best_r2.items(), ("Average", max(average, key=average.get))]:
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        bold = [m for m, c in zip(columns[1:], cells, strict=True) if c.startswith("**")]
        assert bold == [best], (name, row)
        assert sum(c.startswith("<u>") for c in cells) == 1
    png = (tmp_path / "out" / "compare.png").read_bytes()
    assert png[:8] == PNG_MAGIC


def test_a_metric_missing_on_one_run_is_reported(olmo, tmp_path, capsys):
    copy = tmp_path / "results"
    for path in olmo.rglob("*.json"):
        target = copy / path.relative_to(olmo)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(path.read_text())
        if "190M-2xC" in str(path):
            del data["results"]["olmo_csqa"]["correct_prob,none"]
        target.write_text(json.dumps(data))
    payload = olmo_compare(copy, tmp_path / "out", capsys)
    assert len(payload["missing"]) == 1
    assert "csqa `correct_prob`" in payload["missing"][0] and "190M-2xC" in payload["missing"][0]
    assert payload["cells"]["csqa"]["correct_prob"]["n"] == 5
    assert payload["cells"]["csqa"]["correct_prob"]["n_missing_runs"] == 1
    assert payload["cells"]["csqa"]["bpb"]["n"] == 6
    assert "**Missing values**" in (tmp_path / "out" / "compare.md").read_text()


def test_pythia_lambada_metrics(pythia, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["compare", "--results", str(pythia / "pythia-160m" / "zero-shot"),
         str(pythia / "pythia-12b" / "zero-shot"), "--pattern", "*.json",
         "--join-on", "revision", "--proxy-where", "model=*-160m",
         "--target-where", "model=*-12b", "--n-boot", "100", "--quiet", "--no-plot",
         "--benchmark", "lambada=lambada_openai:lambada_openai:acc", "--out-dir", str(out)]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    payload = json.loads((out / "compare.json").read_text())
    assert payload["metrics"] == ["acc", "ppl"]
    values = {}
    for size in ("160m", "12b"):
        for path in (pythia / f"pythia-{size}" / "zero-shot").glob("*.json"):
            data = json.loads(path.read_text())
            step = data["config"]["model_args"].split("revision=")[1]
            values.setdefault(size, {})[step] = data["results"]["lambada_openai"]
    steps = sorted(values["12b"], key=lambda s: int(re.sub(r"\D", "", s)))
    y = np.array([values["12b"][s]["acc"] for s in steps])
    for metric, sign in (("acc", 1.0), ("ppl", -1.0)):  # ppl: lower is better (known name)
        cell = payload["cells"]["lambada"][metric]
        x = np.array([values["160m"][s][metric] for s in steps])
        assert cell["n"] == 27 and [p["key"] for p in cell["points"]] == steps
        assert cell["higher_is_better"] is (sign > 0)
        tau = scipy.stats.kendalltau(sign * x, y).statistic
        assert cell["kendall_tau"]["value"] == pytest.approx(tau, abs=1e-12)
        assert cell["decision_accuracy"]["value"] == pytest.approx(
            decision_accuracy(sign * x, y), abs=1e-12
        )
        assert cell["test_r2"] == pytest.approx(
            repeated_cv(cell["form"], x, y)["r2"], **tolerance(cell["form"])
        )
        assert cell["turns_at"] is None
        assert_monotone(cell["curve"]["y"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--benchmark", "nosuch"], "'nosuch' is not in the accuracy-targets table"),
        (["--benchmark", "x=olmo_arc_challenge:a:b:c:d"], "expected NAME"),
        (["--benchmark", "arc=nosuch_task:olmo_arc_challenge:acc_len_norm"], "no proxy run"),
        (["--benchmark", "arc=olmo_arc_challenge:olmo_arc_challenge:nope"], "no metric 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(olmo, argv, message, capsys):
    from rbridge_tasks.cli import main as rbridge

    code = rbridge(
        ["predict", "compare", "--results", str(olmo), "--proxy-where", "size=190M",
         "--target-where", "size=3B", "--quiet", *argv]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_targets_table_defaults():
    assert Benchmark.parse("gsm8k").target.describe()["filter"] == "strict-match"
    bench = Benchmark.parse("mmlu_pro")
    assert bench.proxy_task == "rbridge_mmlu_pro"
    assert bench.target.task.split(",") == list(targets.MMLU_PRO_STEM)
    assert Benchmark.parse("csqa=my_proxy").target.task == "commonsense_qa"
    assert Benchmark.parse("x=p:commonsense_qa").target.metric == "acc"
    explicit = Benchmark.parse("x=p:t:m")
    assert (explicit.target.task, explicit.target.metric, explicit.target.filter) == (
        "t",
        "m",
        None,
    )
    for name in ("gsm8k", "rbridge_gsm8k"):
        assert targets.lookup(name).metric == "exact_match"
    assert targets.lookup("minerva_math500").benchmark == "math500"
    assert targets.lookup("lambada_openai") is None


def test_readme_shows_the_targets_table():
    assert targets.markdown_table() in README.read_text(encoding="utf-8")


def test_fit_reads_the_target_from_the_table(tmp_path, capsys):
    """`fit --proxy-task rbridge_gsm8k` without target flags: gsm8k exact_match, strict-match
    (results files written in lm-eval 0.4's layout, two filters as the stock task reports)."""
    accuracy = {"A": 0.20, "B": 0.35, "C": 0.30, "D": 0.50}
    nll = {"A": 2.1, "B": 1.7, "C": 1.9, "D": 1.2}
    for recipe in accuracy:
        for task, block in (
            ("rbridge_gsm8k", {"rbridge_nll,none": nll[recipe]}),
            (
                "gsm8k",
                {
                    "exact_match,strict-match": accuracy[recipe],
                    "exact_match,flexible-extract": accuracy[recipe] + 0.1,
                },
            ),
        ):
            run = {
                "results": {task: block},
                "configs": {task: {"metadata": {"recipe": recipe}}},
                "higher_is_better": {task: {next(iter(block)).split(",")[0]: task == "gsm8k"}},
                "config": {"model_args": f"pretrained={task}-{recipe}"},
                "lm_eval_version": "0.4.13",
            }
            path = tmp_path / task / recipe / "results_2026-01-01T00-00-00.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(run))
    code = main(
        ["fit", "--results", str(tmp_path), "--proxy-task", "rbridge_gsm8k",
         "--proxy-metric", "rbridge_nll", "--form", "linear", "--n-boot", "50", "--json",
         "--quiet", "--folds", "2"]
    )  # fmt: skip
    fit = json.loads(capsys.readouterr().out)
    assert code == 0
    target = fit["join"]["target"]
    assert (target["task"], target["metric"], target["filter"]) == (
        "gsm8k",
        "exact_match",
        "strict-match",
    )
    keys = [p["key"] for p in fit["points"]]
    slope, intercept = np.polyfit([nll[k] for k in keys], [accuracy[k] for k in keys], 1)
    assert fit["params"]["slope"] == pytest.approx(slope, rel=1e-9)
    assert fit["params"]["intercept"] == pytest.approx(intercept, rel=1e-9)


def test_fit_without_a_known_target_asks_for_one(pythia, capsys):
    from rbridge_tasks.cli import main as rbridge

    code = rbridge(
        ["predict", "fit", "--results", str(pythia / "pythia-160m" / "zero-shot"),
         "--pattern", "*.json", "--proxy-task", "lambada_openai", "--proxy-metric", "ppl"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pass --target-task and --target-metric" in err


def test_the_same_run_as_proxy_and_target_is_refused(olmo, capsys):
    from rbridge_tasks.cli import main as rbridge

    code = rbridge(
        ["predict", "compare", "--results", str(olmo), "--proxy-where", "size=190M",
         "--target-where", "size=190M", "--quiet",
         "--benchmark", "arc=olmo_arc_challenge:olmo_arc_challenge:acc_len_norm"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "is both a proxy and a target run" in err and "190M-" in err


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
