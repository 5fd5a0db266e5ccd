"""DataDecide's ranking baselines from real lm-eval samples files.

lm-eval runs a tiny random GPT-2 (built here) on copies of the stock `arc_challenge` and
`commonsense_qa` task configs (same doc_to_text / doc_to_choice / doc_to_target; the stock ones
read the hub), over real rows of ../shared/data, and saves results and samples with
EvaluationTracker as `lm_eval --output_path --log_samples` does. Every metric is then recomputed
here from the samples' `resps` (not the `filtered_resps` the code reads) and the request
continuations, with plain Python loops, to 1e-12.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from predictors.data import datadecide
from predictors.data.ingest import load_results, samples_path
from rbridge_tasks.core.errors import RBridgeError

N_DOCS = 6
ARC_YAML = """task: arc_challenge
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
doc_to_choice: "{{{{choices.text}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
CSQA_YAML = """task: commonsense_qa
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
validation_split: validation
output_type: multiple_choice
doc_to_text: "Question: {{{{ question.strip() }}}}\\nA. {{{{choices['text'][0]}}}}\\nB. \
{{{{choices['text'][1]}}}}\\nC. {{{{choices['text'][2]}}}}\\nD. {{{{choices['text'][3]}}}}\\nE. \
{{{{choices['text'][4]}}}}\\nAnswer:"
doc_to_target: answerKey
doc_to_choice: ['A', 'B', 'C', 'D', 'E']
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def _hf_layout(row: dict) -> dict:
    q = row["question"]
    return {
        "id": row["id"],
        "question": q["stem"],
        "choices": {
            "text": [c["text"] for c in q["choices"]],
            "label": [c["label"] for c in q["choices"]],
        },
        "answerKey": row["answerKey"],
    }


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [_hf_layout(json.loads(line)) for line, _ in zip(fh, range(N_DOCS), strict=False)]


@pytest.fixture(scope="module")
def mc_run(tmp_path_factory, data_dir) -> Path:
    """results_*.json + samples_<task>_*.jsonl of one real lm-eval run of both tasks."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager
    from tiny_models import build_tiny_lm, corpus_texts

    root = tmp_path_factory.mktemp("datadecide")
    tasks = root / "tasks"
    tasks.mkdir()
    for name, source, yaml in (
        ("arc", data_dir / "arc_challenge" / "ARC-Challenge-Test.jsonl", ARC_YAML),
        ("csqa", data_dir / "commonsenseqa" / "dev_rand_split.jsonl", CSQA_YAML),
    ):
        (tasks / f"{name}.json").write_text(json.dumps(_rows(source)), encoding="utf-8")
        (tasks / f"{name}.yaml").write_text(yaml.format(data=tasks / f"{name}.json"))
    model = build_tiny_lm(root / "model", seed=5, texts=corpus_texts(300))
    tracker = EvaluationTracker(output_path=str(root / "out"))
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model}",
        tasks=["arc_challenge", "commonsense_qa"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
        evaluation_tracker=tracker,
        log_samples=True,
        batch_size=8,
        device="cpu",
        bootstrap_iters=0,
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    (found,) = (root / "out").rglob("results_*.json")
    return found


def by_hand(samples: Path) -> dict[str, list[float]]:
    """The five metrics per document from `resps` and the scored continuations."""
    out: dict[str, list[float]] = {m: [] for m in datadecide.METRICS}
    for line in samples.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        lls = [float(r[0][0]) for r in record["resps"]]
        conts = [record["arguments"][f"gen_args_{i}"]["arg_1"] for i in range(len(lls))]
        target = record["target"]
        gold = int(target) if target.isdigit() else [c.strip() for c in conts].index(target)
        per_char = [ll / len(c) for ll, c in zip(lls, conts, strict=True)]
        probs = [math.exp(v) for v in per_char]
        best_wrong = max(p for i, p in enumerate(probs) if i != gold)
        best = max(range(len(per_char)), key=per_char.__getitem__)
        out["correct_prob_per_char"].append(probs[gold])
        out["norm_correct_prob_per_char"].append(probs[gold] / sum(probs))
        out["total_prob_per_char"].append(sum(probs))
        out["margin_per_char"].append(probs[gold] - best_wrong)
        out["acc_per_char"].append(1.0 if best == gold else 0.0)
        # the gold index agrees with lm-eval's own raw-likelihood accuracy
        raw_best = max(range(len(lls)), key=lls.__getitem__)
        assert record["acc"] == (1.0 if raw_best == gold else 0.0)
    return out


@pytest.mark.parametrize("task", ["arc_challenge", "commonsense_qa"])
def test_metrics_match_hand_computation(mc_run, task):
    samples = samples_path(mc_run, task)
    assert samples is not None
    expected = by_hand(samples)
    questions = datadecide.read_questions(samples)
    assert len(questions) == N_DOCS
    for q, k in zip(questions, range(N_DOCS), strict=True):
        got = datadecide.question_metrics(q)
        for metric in datadecide.METRICS:
            assert got[metric] == pytest.approx(expected[metric][k], rel=1e-12, abs=1e-15)
    means = datadecide.run_metrics(samples)
    for metric, values in expected.items():
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        assert means[metric][0] == pytest.approx(mean, rel=1e-12, abs=1e-15)
        assert means[metric][1] == pytest.approx(sd / math.sqrt(len(values)), rel=1e-9, abs=1e-15)
    # bounds DataDecide's code asserts
    assert all(0 <= v <= 1 for v in expected["norm_correct_prob_per_char"])
    assert all(-1 <= v <= 1 for v in expected["margin_per_char"])


def test_cloze_accuracy_differs_from_acc_norm_only_by_the_delimiter(mc_run):
    """acc_per_char divides by the scored continuation (with its leading space), lm-eval's
    acc_norm by the option text: recompute acc_norm the lm-eval way and compare per document."""
    samples = samples_path(mc_run, "arc_challenge")
    for line in samples.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        lls = [float(r[0][0]) for r in record["resps"]]
        options = [record["arguments"][f"gen_args_{i}"]["arg_1"][1:] for i in range(len(lls))]
        norm = [ll / len(o) for ll, o in zip(lls, options, strict=True)]
        gold = int(record["target"])
        assert record["acc_norm"] == (
            1.0 if max(range(len(norm)), key=norm.__getitem__) == gold else 0.0
        )


def test_add_derived_puts_the_metrics_in_the_tidy_table(mc_run):
    tidy = load_results([mc_run])
    derived, notes = datadecide.add_derived(tidy, "arc_challenge")
    assert notes == []
    rows = derived[
        (derived["task"] == "arc_challenge") & derived["metric"].isin(datadecide.METRICS)
    ]
    assert sorted(rows["metric"]) == sorted(datadecide.METRICS)
    means = datadecide.run_metrics(samples_path(mc_run, "arc_challenge"))
    for _, row in rows.iterrows():
        assert (row["value"], row["stderr"]) == means[row["metric"]]
        assert row["higher_is_better"] is True and row["filter"] == "none"
    # a run without samples: noted, not skipped silently
    lonely = mc_run.parent / "elsewhere" / mc_run.name
    lonely.parent.mkdir()
    lonely.write_text(mc_run.read_text())
    _, notes = datadecide.add_derived(load_results([lonely]), "arc_challenge")
    assert len(notes) == 1 and "no samples file" in notes[0] and str(lonely) in notes[0]


def _rewrite(samples: Path, tmp_path: Path, edit) -> Path:
    lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    edit(lines[1])
    out = tmp_path / samples.name
    out.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return out


def test_bad_samples_name_file_line_and_field(mc_run, tmp_path):
    samples = samples_path(mc_run, "arc_challenge")

    def wrong_gold(record):
        lls = [float(r[0]) for r in record["filtered_resps"]]
        best = max(range(len(lls)), key=lls.__getitem__)
        other = next(i for i in range(len(lls)) if i != best)
        record["target"] = str(best if record["acc"] == 0.0 else other)

    cases = [
        (wrong_gold, "field 'target'", "disagrees with lm-eval's own acc"),
        (lambda r: r.update(target="9"), "field 'target'", "target index 9"),
        (lambda r: r.update(target="Z"), "field 'target'", "neither an option index"),
        (lambda r: r["filtered_resps"].pop(), "field 'filtered_resps'", "one response per option"),
        (lambda r: r["filtered_resps"].__setitem__(0, "x"), "filtered_resps[0]", "is not a"),
    ]
    for edit, field, message in cases:
        path = _rewrite(samples, tmp_path, edit)
        with pytest.raises(RBridgeError) as info:
            datadecide.read_questions(path)
        text = str(info.value)
        assert str(path) in text and "line 2" in text and field in text and message in text


def test_compare_ranks_recipes_by_the_derived_metrics(lm_eval_runs, tmp_path, capsys):
    """`compare --datadecide` on real lm-eval runs of four recipes (tiny_mc: ARC-Challenge
    questions, predict_fixtures.py): the derived metrics join lm-eval's own `acc` as columns, each
    run's value the mean recomputed from its samples file."""
    from predictors.cli import main

    out = tmp_path / "out"
    code = main(
        ["compare", "--results", str(lm_eval_runs / "runs"), "--benchmark",
         "arc=tiny_mc:tiny_mc:acc", "--proxy-where", "role=proxy", "--target-where",
         "role=target", "--datadecide", "--forms", "linear", "--n-boot", "50", "--quiet",
         "--out-dir", str(out)]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    payload = json.loads((out / "compare.json").read_text())
    assert payload["metrics"] == sorted(["acc", *datadecide.METRICS])
    tidy = load_results([lm_eval_runs / "runs"])
    proxies = tidy[(tidy["task"] == "tiny_mc") & (tidy["metric"] == "acc")]
    proxies = proxies[[m["role"] == "proxy" for m in proxies["metadata"]]]
    by_recipe = {
        meta["recipe"]: datadecide.run_metrics(samples_path(source, "tiny_mc"))
        for source, meta in zip(proxies["source"], proxies["metadata"], strict=True)
    }
    for metric in datadecide.METRICS:
        cell = payload["cells"]["arc"][metric]
        assert cell["higher_is_better"] is True
        assert {p["key"]: p["x"] for p in cell["points"]} == {
            recipe: values[metric][0] for recipe, values in by_recipe.items()
        }
    assert "acc_per_char" in (out / "compare.md").read_text()


def test_a_task_that_is_not_multiple_choice_is_refused(lm_eval_runs):
    tidy = load_results([lm_eval_runs / "runs" / "proxy-A"])
    with pytest.raises(RBridgeError) as info:
        datadecide.add_derived(tidy, "tiny_nll")
    text = str(info.value)
    assert "field 'configs.tiny_nll.output_type'" in text and "'loglikelihood'" in text
    assert "results_" in text
