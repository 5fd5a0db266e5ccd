"""`rbridge predict` on the real ladders of ../shared/data: forms chosen by held-out error,
curves that keep their direction, intervals that are possible, honest and the same everywhere,
decisions scored within blocks, fits that know their target, clear refusals.

Data (read as they are, or imported with `import-table`):
- OLMo ladder final checkpoints: 190M/370M/760M/1B proxies -> 3B targets at 0.5-10x Chinchilla,
  ARC-Challenge and CSQA accuracy, bits per byte, probability of the answer, C4 loss;
- Pythia zero-shot checkpoints: pythia-160m LAMBADA perplexity -> pythia-12b accuracy, and the
  same for the deduplicated-Pile twins (files copied with `variant=...` added to model_args, so
  a standard and a deduplicated run of one step can be joined as recipes of one block).
Independent computations: `reference_fits` (numpy polyfit, scipy curve_fit and SLSQP, sklearn's
KFold), pair enumeration with itertools, the csv and json modules.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from reference_fits import assert_monotone, last_row, repeated_cv

from rbridge_tasks.cli import main as rbridge

OLMO_TASKS = {"arc": "arc_challenge_test", "csqa": "csqa_val"}
OLMO_METRICS = {  # CSV column pattern -> (metric, direction)
    "eval/downstream/{}_rc_5shot_len_norm": ("acc_len_norm", "higher"),
    "eval/downstream_bpb/{}_rc_5shot_bpb": ("bpb", "lower"),
    "eval/downstream_soft/{}_rc_5shot_soft": ("correct_prob", "higher"),
    "eval/c4_en-validation/CrossEntropyLoss": ("c4_loss", "lower"),
}
RECIPES = ["0.5xC", "1xC", "1xC-rerun", "2xC", "5xC", "10xC"]
FORMS = ("linear", "quadratic", "exponential", "logarithmic", "sigmoid")
PYTHIA_FIT = ["--pattern", "*.json", "--proxy-task", "lambada_openai", "--proxy-metric", "ppl"]


def predict(capsys, *argv: str) -> tuple[int, str, str]:
    code = rbridge(["predict", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line_error(capsys, *argv: str) -> str:
    code, _, err = predict(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rbridge predict: error: "), err
    return lines[0]


def olmo_xy(ladder: Path, size: str, task: str, metric_pattern: str) -> tuple[np.ndarray, ...]:
    column = OLMO_TASKS[task]
    x = [
        float(last_row(ladder / f"{size}-{r}.csv")[metric_pattern.format(column)]) for r in RECIPES
    ]
    target = f"eval/downstream/{column}_rc_5shot_len_norm"
    y = [float(last_row(ladder / f"3B-{r}.csv")[target]) for r in RECIPES]
    return np.array(x), np.array(y)


@pytest.fixture(scope="module")
def olmo(data_dir, tmp_path_factory) -> Path:
    """Every size's final checkpoint as a results file, metadata size and recipe."""
    out = tmp_path_factory.mktemp("olmo_all")
    for path in sorted((data_dir / "olmo_ladder").glob("*-*xC*.csv")):
        size, recipe = path.stem.split("-", 1)
        specs = []
        for name, column in OLMO_TASKS.items():
            for pattern, (metric, direction) in OLMO_METRICS.items():
                specs += ["--metric", f"{pattern.format(column)}=olmo_{name}:{metric}:{direction}"]
        code = rbridge(
            ["predict", "import-table", str(path), "--revision-column", "_step", "--rows",
             "last", *specs, "--set", f"size={size}", "--set", f"recipe={recipe}",
             "--out-dir", str(out)]
        )  # fmt: skip
        assert code == 0
    return out


@pytest.fixture(scope="module")
def pythia_variants(pythia, tmp_path_factory) -> Path:
    """The 160m and 12b checkpoints of the standard and deduplicated Pile, copied with
    `variant=standard|deduped` appended to model_args (values untouched)."""
    out = tmp_path_factory.mktemp("pythia_variants")
    for size in ("160m", "12b"):
        for variant, suffix in (("standard", ""), ("deduped", "-deduped")):
            for path in (pythia / f"pythia-{size}{suffix}" / "zero-shot").glob("*.json"):
                data = json.loads(path.read_text())
                data["config"]["model_args"] += f",variant={variant}"
                target = out / f"{size}{suffix}" / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(data))
    return out


def pythia_values(root: Path, size: str, task: str, metric: str) -> dict[tuple[str, str], float]:
    """{(variant, revision): value} from the copied files, read with json only."""
    values = {}
    for path in root.glob(f"{size}*/*.json"):
        data = json.loads(path.read_text())
        args = dict(kv.split("=", 1) for kv in data["config"]["model_args"].split(","))
        values[(args["variant"], args["revision"])] = data["results"][task][metric]
    return values


@pytest.mark.parametrize("size", ["370M", "760M", "1B"])
def test_olmo_forms_are_chosen_by_held_out_r2_and_keep_their_direction(
    olmo, data_dir, size, tmp_path, capsys
):
    """Every proxy metric of every proxy size: the chosen form has the best held-out R2 of
    the five (recomputed independently), its curve never turns inside the fitted range, and
    every held-out prediction is an accuracy."""
    benchmarks = [f"--benchmark={n}=olmo_{n}:olmo_{n}:acc_len_norm" for n in OLMO_TASKS]
    code, _, err = predict(
        capsys, "compare", "--results", str(olmo), "--proxy-where", f"size={size}",
        "--target-where", "size=3B", "--n-boot", "50", "--quiet", "--no-plot",
        "--out-dir", str(tmp_path), *benchmarks,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads((tmp_path / "compare.json").read_text())
    ladder = data_dir / "olmo_ladder"
    for task in OLMO_TASKS:
        for pattern, (metric, _) in OLMO_METRICS.items():
            cell = payload["cells"][task][metric]
            x, y = olmo_xy(ladder, size, task, pattern)
            assert [p["x"] for p in cell["points"]] == x.tolist()
            reference = {
                form: repeated_cv(form, x, y)["r2"]
                for form in FORMS
                if form != "logarithmic" or np.all(x > 0)
            }
            for form, value in reference.items():
                assert cell["forms"][form]["r2"] == pytest.approx(value, abs=1e-4), (metric, form)
            assert reference[cell["form"]] >= max(reference.values()) - 2e-4, (task, metric)
            assert cell["turns_at"] is None
            assert_monotone(cell["curve"]["y"])
            assert all(0.0 <= p["cv_prediction"] <= 1.0 for p in cell["points"])


def test_intervals_cover_held_out_checkpoints_at_about_their_nominal_rate(pythia, tmp_path, capsys):
    """Leave one checkpoint out of the Pythia ladder, fit the other 26 through the CLI, ask the
    leaderboard for the held-out checkpoint: its 90% prediction interval must hold pythia-12b's
    true ARC-Challenge accuracy about 90% of the time (27 trials: at least 22, i.e. no more than
    ~1.7 binomial sd below 0.9) and lie in [0, 1]."""
    runs = pythia / "pythia-160m" / "zero-shot"
    truth = {}
    for path in (pythia / "pythia-12b" / "zero-shot").glob("*.json"):
        data = json.loads(path.read_text())
        truth[data["config"]["model_args"].split("revision=")[1]] = data["results"][
            "arc_challenge"
        ]["acc"]
    hits, widths = 0, []
    for path in sorted(runs.glob("*.json")):
        step = path.stem.split("_")[1]
        out = tmp_path / step
        code, _, err = predict(
            capsys, "fit", "--results", str(runs), str(pythia / "pythia-12b" / "zero-shot"),
            *PYTHIA_FIT, "--proxy-where", "model=*-160m", "--target-where", "model=*-12b",
            "--where", f"revision!={step}", "--join-on", "revision",
            "--target-task", "arc_challenge", "--target-metric", "acc", "--n-boot", "200",
            "--quiet", "--no-plot", "--out-dir", str(out),
        )  # fmt: skip
        assert code == 0, err
        fit = json.loads((out / "fit.json").read_text())
        assert step not in [p["key"] for p in fit["points"]] and len(fit["points"]) == 26
        code, text, _ = predict(
            capsys, "leaderboard", "--fit", str(out / "fit.json"), "--results", str(path),
            "--quiet", "--json",
        )  # fmt: skip
        (entry,) = json.loads(text)["entries"]
        assert 0.0 <= entry["lower"] <= entry["predicted"] <= entry["upper"] <= 1.0
        hits += entry["lower"] <= truth[step] <= entry["upper"]
        widths.append(entry["upper"] - entry["lower"])
    assert 22 <= hits <= 27, hits
    assert np.median(widths) > 0.05  # the scatter of checkpoints, not only the curve's


@pytest.fixture(scope="module")
def pythia_fit(pythia, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one_interval")
    code = rbridge(
        ["predict", "fit", "--results", str(pythia / "pythia-160m" / "zero-shot"),
         str(pythia / "pythia-12b" / "zero-shot"), *PYTHIA_FIT, "--proxy-where", "model=*-160m",
         "--target-where", "model=*-12b", "--join-on", "revision", "--target-task",
         "arc_challenge", "--target-metric", "acc", "--n-boot", "400", "--quiet",
         "--out-dir", str(out)]
    )  # fmt: skip
    assert code == 0
    return out


def test_fit_leaderboard_and_gate_report_one_interval_per_run(pythia, pythia_fit, tmp_path, capsys):
    fit = json.loads((pythia_fit / "fit.json").read_text())
    stored = fit["model"]["interval"]
    assert (stored["method"], stored["seed"], stored["n_boot"]) == (
        fit["interval"]["method"],
        0,
        400,
    )
    assert len(stored["values"]) == len(stored["residuals"]) == 400 - stored["n_failed"]
    by_step = {p["key"]: p for p in fit["points"]}
    runs = pythia / "pythia-160m" / "zero-shot"
    steps = ["step143000", "step3000", "step13000", "step512"]
    code, text, _ = predict(
        capsys, "leaderboard", "--fit", str(pythia_fit / "fit.json"), "--results",
        *(str(runs / f"160m_{s}.json") for s in steps), "--quiet", "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["interval"] == fit["interval"]
    fit_md = (pythia_fit / "fit.md").read_text()
    for entry in board["entries"]:
        step = entry["label"].split("@")[1]
        assert (entry["lower"], entry["upper"]) == (by_step[step]["lower"], by_step[step]["upper"])
        shown = f"| {entry['lower']:.4f} | {entry['upper']:.4f} |"
        assert shown in fit_md and shown in text  # the Markdown of both shows the same numbers
    for baseline, candidate in (("step143000", "step3000"), ("step13000", "step512")):
        code, text, _ = predict(
            capsys, "gate", "--fit", str(pythia_fit / "fit.json"),
            "--baseline", str(runs / f"160m_{baseline}.json"),
            "--candidate", str(runs / f"160m_{candidate}.json"), "--quiet", "--json",
        )  # fmt: skip
        gate = json.loads(text)
        assert gate["interval"] == fit["interval"]
        for name, step in (("baseline", baseline), ("candidate", candidate)):
            assert (gate[name]["lower"], gate[name]["upper"]) == (
                by_step[step]["lower"],
                by_step[step]["upper"],
            )
        assert -1.0 <= gate["difference"]["lower"] <= gate["difference"]["upper"] <= 1.0


def pairs_within(keys: list, blocks: list) -> list[tuple]:
    return [
        (keys[i], keys[j])
        for i, j in itertools.combinations(range(len(keys)), 2)
        if blocks[i] == blocks[j]
    ]


def decision_accuracy(pairs: list[tuple], proxy: dict, target: dict) -> tuple[float, int]:
    """proxy/target: {key: goodness}; target ties left out, proxy ties 1/2."""
    credit = []
    for a, b in pairs:
        if target[a] == target[b]:
            continue
        if proxy[a] == proxy[b]:
            credit.append(0.5)
        else:
            credit.append(float((proxy[a] > proxy[b]) == (target[a] > target[b])))
    return float(np.mean(credit)), len(credit)


def test_rank_within_a_step_scores_only_the_data_choice(pythia_variants, tmp_path, capsys):
    """Standard vs deduplicated Pile at each of 27 checkpoints: pooled over every pair the
    proxy mostly ranks training steps; within a step (the data decision) it is near chance,
    and the command says which pairs it counted and warns that the two disagree."""
    code, _, err = predict(
        capsys, "rank", "--results", str(pythia_variants), *PYTHIA_FIT,
        "--proxy-where", "model=*-160m*", "--target-where", "model=*-12b*",
        "--target-task", "arc_challenge", "--target-metric", "acc",
        "--join-on", "variant,revision", "--within", "revision", "--n-boot", "200",
        "--quiet", "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads((tmp_path / "rank.json").read_text())
    proxy = pythia_values(pythia_variants, "160m", "lambada_openai", "ppl")
    target = pythia_values(pythia_variants, "12b", "arc_challenge", "acc")
    keys = [r["key"] for r in payload["recipes"]]
    lookup = {f"{v}|{r}": (v, r) for v, r in proxy}
    goodness = {k: -proxy[lookup[k]] for k in keys}  # perplexity: lower is better
    accuracy = {k: target[lookup[k]] for k in keys}
    within = pairs_within(keys, [lookup[k][1] for k in keys])
    assert len(within) == 27
    expected, decided = decision_accuracy(within, goodness, accuracy)
    pooled, _ = decision_accuracy(list(itertools.combinations(keys, 2)), goodness, accuracy)
    result = payload["within"]
    assert {frozenset(p) for p in result["pairs_counted"]} == {frozenset(p) for p in within}
    assert result["decision_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert result["n_pairs"] == decided
    assert result["n_cross_block_pairs"] == 54 * 53 // 2 - 27
    assert payload["decision_accuracy"] == pytest.approx(pooled, abs=1e-12)
    assert result["lower"] <= result["decision_accuracy"] <= result["upper"]
    assert pooled - expected >= 0.1 and result["disagrees"]
    for block in result["blocks"]:
        assert sorted(block["recipes"]) == sorted(
            f"{v}|{block['block']}" for v in ("deduped", "standard")
        )
    markdown = (tmp_path / "rank.md").read_text()
    assert "**Within `revision`**" in markdown and "The two disagree" in markdown
    assert "Pairs counted: deduped|step0 vs standard|step0" in markdown
    assert f"over the {decided} pairs within one revision" in err


def test_rank_within_on_the_olmo_ladder(olmo, data_dir, capsys):
    """30 OLMo models (5 sizes x 6 multiples): C4 loss -> ARC-Challenge accuracy, decisions
    among sizes within one multiple; they agree with the pooled figure: no warning."""
    code, text, err = predict(
        capsys, "rank", "--results", str(olmo), "--proxy-task", "olmo_arc",
        "--proxy-metric", "c4_loss", "--target-task", "olmo_arc",
        "--target-metric", "acc_len_norm", "--join-on", "size,recipe", "--within", "recipe",
        "--n-boot", "100", "--quiet", "--json",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(text)
    ladder = data_dir / "olmo_ladder"
    goodness, accuracy, blocks = {}, {}, {}
    for path in ladder.glob("*-*xC*.csv"):
        size, recipe = path.stem.split("-", 1)
        row = last_row(path)
        key = f"{size}|{recipe}"
        goodness[key] = -float(row["eval/c4_en-validation/CrossEntropyLoss"])
        accuracy[key] = float(row["eval/downstream/arc_challenge_test_rc_5shot_len_norm"])
        blocks[key] = recipe
    keys = sorted(goodness)
    within = pairs_within(keys, [blocks[k] for k in keys])
    expected, decided = decision_accuracy(within, goodness, accuracy)
    result = payload["within"]
    assert len(within) == 6 * 10
    assert {frozenset(p) for p in result["pairs_counted"]} == {frozenset(p) for p in within}
    assert result["decision_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert result["n_pairs"] == decided and not result["disagrees"]
    assert "within one recipe" not in err


def test_compare_and_gate_within_a_step(pythia_variants, tmp_path, capsys):
    common = [
        "--results", str(pythia_variants), "--pattern", "*.json",
        "--proxy-where", "model=*-160m*", "--target-where", "model=*-12b*",
        "--join-on", "variant,revision", "--n-boot", "200", "--quiet",
    ]  # fmt: skip
    code, _, err = predict(
        capsys, "compare", *common, "--within", "revision", "--no-plot",
        "--benchmark", "arc=lambada_openai:arc_challenge:acc", "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads((tmp_path / "compare.json").read_text())
    proxy = pythia_values(pythia_variants, "160m", "lambada_openai", "ppl")
    target = pythia_values(pythia_variants, "12b", "arc_challenge", "acc")
    cell = payload["cells"]["arc"]["ppl"]
    keys = [p["key"] for p in cell["points"]]
    lookup = {f"{v}|{r}": (v, r) for v, r in proxy}
    within = pairs_within(keys, [lookup[k][1] for k in keys])
    expected, _ = decision_accuracy(
        within, {k: -proxy[lookup[k]] for k in keys}, {k: target[lookup[k]] for k in keys}
    )
    assert {frozenset(p) for p in cell["within"]["pairs_counted"]} == {frozenset(p) for p in within}
    assert cell["decision_accuracy_within"]["value"] == pytest.approx(expected, abs=1e-12)
    markdown = (tmp_path / "compare.md").read_text()
    assert "### Decision accuracy within blocks of `revision`" in markdown
    assert "arc `ppl`" in markdown.split("decision accuracy differ by 0.1 or more")[1]
    # gate: a fit on the same 54 points; a standard and a deduplicated run of one step
    fit_dir = tmp_path / "fit"
    code, _, err = predict(
        capsys, "fit", *common, "--proxy-task", "lambada_openai", "--proxy-metric", "ppl",
        "--target-task", "arc_challenge", "--target-metric", "acc", "--no-plot",
        "--out-dir", str(fit_dir),
    )  # fmt: skip
    assert code == 0, err
    fit_file = str(fit_dir / "fit.json")
    standard = pythia_variants / "160m" / "160m_step143000.json"
    deduped = pythia_variants / "160m-deduped" / "160m-deduped_step143000.json"
    code, text, err = predict(
        capsys, "gate", "--fit", fit_file, "--baseline", str(standard), "--candidate",
        str(deduped), "--within", "revision", "--quiet", "--json",
    )  # fmt: skip
    assert code in (0, 1), err
    gate = json.loads(text)
    fit_points = json.loads((fit_dir / "fit.json").read_text())["model"]["points"]
    fit_keys = fit_points["key"]
    fit_within = pairs_within(fit_keys, [f["revision"] for f in fit_points["proxy_fields"]])
    expected, _ = decision_accuracy(
        fit_within,
        dict(zip(fit_keys, -np.array(fit_points["x"]), strict=True)),
        dict(zip(fit_keys, fit_points["y"], strict=True)),
    )
    assert gate["within"]["block"] == "step143000"
    assert gate["within"]["decision_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert gate["within"]["disagrees"] and "on the fit's ladder, decision accuracy" in err
    message = one_line_error(
        capsys, "gate", "--fit", fit_file, "--baseline", str(standard), "--candidate",
        str(pythia_variants / "160m-deduped" / "160m-deduped_step3000.json"),
        "--within", "revision", "--quiet",
    )  # fmt: skip
    assert "--within revision: the baseline has revision='step143000', the candidate" in message


@pytest.mark.parametrize("tolerance", ["-0.05", "nan", "inf"])
def test_gate_tolerance_must_be_a_finite_non_negative_number(pythia, pythia_fit, tolerance, capsys):
    run = str(pythia / "pythia-160m" / "zero-shot" / "160m_step143000.json")
    message = one_line_error(
        capsys, "gate", "--fit", str(pythia_fit / "fit.json"), "--baseline", run,
        "--candidate", run, "--tolerance", tolerance, "--quiet",
    )  # fmt: skip
    assert "--tolerance must be a finite number >= 0" in message and tolerance in message


def test_a_fit_without_skill_says_so_everywhere_and_gate_refuses(pythia, tmp_path, capsys):
    """pythia-160m LAMBADA perplexity -> pythia-12b MMLU college biology, near chance at every
    checkpoint: no form predicts held-out checkpoints better than their mean."""
    runs = [str(pythia / "pythia-160m" / "zero-shot"), str(pythia / "pythia-12b" / "zero-shot")]
    select = ["--proxy-where", "model=*-160m", "--target-where", "model=*-12b", "--join-on",
              "revision"]  # fmt: skip
    target = ["--target-task", "hendrycksTest-college_biology", "--target-metric", "acc"]
    code, text, err = predict(
        capsys, "fit", "--results", *runs, *PYTHIA_FIT, *select, *target, "--n-boot", "200",
        "--quiet", "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    fit = json.loads((tmp_path / "fit.json").read_text())
    x = np.array([p["x"] for p in fit["points"]])
    y = np.array([p["y"] for p in fit["points"]])
    best = max(repeated_cv(form, x, y)["r2"] for form in FORMS)
    assert best <= 0 and fit["skill"]["cv_r2"] == pytest.approx(best, abs=1e-4)
    message = fit["skill"]["message"]
    assert fit["skill"]["no_skill"] and message.startswith("no skill: out of sample the")
    assert text.splitlines()[2] == f"**{message}**"  # Markdown: second thing said
    assert message in fit["warnings"] and f"rbridge predict: warning: {message}" in err
    run = str(pythia / "pythia-160m" / "zero-shot" / "160m_step143000.json")
    code, text, err = predict(
        capsys, "leaderboard", "--fit", str(tmp_path / "fit.json"), "--results", run, "--quiet"
    )
    assert code == 0 and f"**{message}**" in text and message in err
    gate = ["gate", "--fit", str(tmp_path / "fit.json"), "--baseline", run, "--candidate", run]
    refused = one_line_error(capsys, *gate, "--quiet")
    assert message in refused and "pass --allow-no-skill" in refused
    code, text, err = predict(capsys, *gate, "--allow-no-skill", "--quiet", "--json")
    assert code == 0 and message in json.loads(text)["warnings"]
    code, text, err = predict(
        capsys, "compare", "--results", *runs, "--pattern", "*.json", *select, "--n-boot", "50",
        "--benchmark", "bio=lambada_openai:hendrycksTest-college_biology:acc", "--quiet",
        "--no-plot",
    )  # fmt: skip
    assert code == 0, err
    assert "**No skill** (held-out R2 <= 0" in text and "bio `ppl`" in text
    assert "(no skill)" in text


def test_compare_with_too_few_runs_is_refused_as_fit_refuses(olmo, capsys):
    select = ["--results", str(olmo), "--proxy-where", "size=190M", "--proxy-where",
              "recipe=[12]xC", "--target-where", "size=3B", "--quiet"]  # fmt: skip
    from_compare = one_line_error(
        capsys,
        "compare",
        *select,
        "--benchmark",
        "arc=olmo_arc:olmo_arc:acc_len_norm",
    )
    from_fit = one_line_error(
        capsys, "fit", *select, "--proxy-task", "olmo_arc", "--proxy-metric", "bpb",
        "--target-task", "olmo_arc", "--target-metric", "acc_len_norm",
    )  # fmt: skip
    assert from_fit.startswith(
        "rbridge predict: error: only 2 joined proxy/target point(s) (keys '1xC', '2xC'); "
        "a fit needs at least 3, for cross-validation"
    )
    assert from_compare == from_fit.replace("error: ", "error: benchmark arc: ", 1)


def test_a_fit_records_its_target_and_refuses_another(olmo, tmp_path, capsys):
    code, text, err = predict(
        capsys, "fit", "--results", str(olmo), "--proxy-task", "olmo_arc",
        "--proxy-metric", "bpb", "--proxy-where", "size=190M", "--target-task",
        "olmo_arc", "--target-metric", "acc_len_norm", "--target-where", "size=3B",
        "--n-boot", "200", "--quiet", "--no-plot", "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["model"]["target"]["shared"]["size"] == "3B"
    assert fit["predicts"]["task"] == "olmo_arc" and "size=3B" in text
    board = ["leaderboard", "--fit", str(tmp_path / "fit.json"), "--results", str(olmo),
             "--where", "size=190M", "--quiet", "--json"]  # fmt: skip
    code, text, _ = predict(capsys, *board, "--target-where", "size=3B")
    assert code == 0 and not any(e["extrapolated"] for e in json.loads(text)["entries"])
    message = one_line_error(capsys, *board, "--target-where", "size=1B")
    assert "predicts olmo_arc acc_len_norm of targets with size in ['3B']" in message
    assert "not 'size=1B'" in message and "--extrapolate-target" in message
    message = one_line_error(capsys, *board, "--target-where", "size<=3")
    assert "'size<=3': the fit's target runs have size ['3B'], not numbers" in message
    code, text, err = predict(capsys, *board, "--target-where", "size=1B", "--extrapolate-target")
    payload = json.loads(text)
    assert code == 0 and all(e["extrapolated"] for e in payload["entries"])
    assert payload["target_extrapolation"].startswith("target extrapolation: this fit predicts")
    assert payload["target_extrapolation"] in err
    run = next(p for p in olmo.rglob("*.json") if "190M-1xC" in str(p) and "rerun" not in str(p))
    message = one_line_error(
        capsys, "gate", "--fit", str(tmp_path / "fit.json"), "--baseline", str(run),
        "--candidate", str(run), "--no-score-noise", "--target-where", "size=1B",
    )  # fmt: skip
    assert "not 'size=1B'" in message


def test_imported_metadata_keeps_its_type(tmp_path, capsys):
    """A column holding 1, 1, 0.5 and 2: pandas reads floats, a run would carry 1.0 and
    `--where mult=1` would find nothing."""
    table = tmp_path / "ladder.csv"
    table.write_text(
        "model,mult,nll,acc\na,1,2.0,0.30\nb,1,1.8,0.35\nc,0.5,2.4,0.25\nd,2,1.5,0.42\n"
    )
    out = tmp_path / "runs"
    code, _, err = predict(
        capsys, "import-table", str(table), "--model-column", "model", "--meta", "mult=mult",
        "--metric", "nll=t:nll:lower", "--metric", "acc=t:acc", "--out-dir", str(out),
    )  # fmt: skip
    assert code == 0, err
    metadata = {
        path.parent.name: json.loads(path.read_text())["configs"]["t"]["metadata"]["mult"]
        for path in out.rglob("results_*.json")
    }
    assert metadata == {"a": 1, "b": 1, "c": 0.5, "d": 2}
    assert type(metadata["a"]) is int and type(metadata["c"]) is float
    code, text, err = predict(
        capsys, "rank", "--results", str(out), "--proxy-task", "t", "--proxy-metric", "nll",
        "--target-task", "t", "--target-metric", "acc", "--join-on", "model",
        "--where", "mult=1", "--n-boot", "20", "--quiet", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(r["key"] for r in json.loads(text)["recipes"]) == ["a", "b"]
