"""`context=fewshot`: checked against lm-eval's own prompt builder, or against the data files.

Where lm-eval has the benchmark's chain-of-thought task and can run it offline (gsm8k-cot,
mmlu_pro, commonsense_qa), the expected prompt is what lm-eval's `ConfigurableTask` itself
builds from the installed YAML, fed the same rows through the `json` dataset builder. The
others are checked against the files they come from, read here separately.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import lm_eval
import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.questions.fewshot import MMLU_PRO_DESCRIPTION, FewshotContext
from rbridge_tasks.questions.sources import load_questions, normalise_text

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"


def lm_eval_prompts(yaml_path: Path, data_files: dict, cache: Path, k: int, n: int, **over):
    """lm-eval's own few-shot context for the first n evaluated docs of a task YAML."""
    config = load_yaml(yaml_path)
    config.update(
        dataset_path="json",
        dataset_name=None,
        dataset_kwargs={
            "data_files": {s: str(p) for s, p in data_files.items()},
            "cache_dir": str(cache / "hf_datasets"),
        },
        **over,
    )
    task = ConfigurableTask(config=config)
    docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
    return [task.fewshot_context(docs[i], k) for i in range(n)]


def blocks(prompt: str) -> list[str]:
    return prompt.split("\n\n")


@pytest.mark.parametrize("k", [1, 5, 8])
def test_gsm8k_is_lm_evals_gsm8k_cot_prompt(tmp_path, data_dir, k):
    test = data_dir / "gsm8k" / "test.jsonl"
    expected = lm_eval_prompts(
        LM_EVAL_TASKS / "gsm8k" / "gsm8k-cot.yaml", {"test": test}, tmp_path, k, 3
    )
    context = FewshotContext.load("gsm8k", str(data_dir), k)
    questions = load_questions("gsm8k", data_dir)[:3]
    assert [context.prompt(q) for q in questions] == expected
    # the parts, independently: k "Q:/A: ... The answer is N." exemplars, then the open question
    for q, prompt in zip(questions, expected, strict=True):
        *shots, last = blocks(prompt)
        assert len(shots) == k
        assert all(re.fullmatch(r"Q: .+\nA: .+ The answer is \d+\.", s, re.S) for s in shots)
        assert last == f"Q: {q.question}\nA:"
        assert prompt.count(q.question) == 1


def test_gsm8k_exemplars_are_no_gsm8k_rows(data_dir):
    """lm-eval's gsm8k-cot exemplars are Wei et al.'s, neither test nor train rows of GSM8K."""
    shots = blocks(
        FewshotContext.load("gsm8k", None, 8).prompt(load_questions("gsm8k", data_dir)[0])
    )[:-1]
    asked = {normalise_text(q[3:].split("\nA:")[0]) for q in shots}
    rows = [
        r["question"]
        for s in ("test", "train")
        for r in read_rows(data_dir / "gsm8k" / f"{s}.jsonl")
    ]
    assert len(asked) == 8 and asked.isdisjoint(normalise_text(r) for r in rows)


def test_gsm8k_more_shots_than_lm_eval_has(data_dir):
    with pytest.raises(RBridgeError, match=r"k=9: lm-eval's gsm8k-cot .* has only 8 exemplars"):
        FewshotContext.load("gsm8k", str(data_dir), 9)


def arc_turn(row: dict) -> str:
    options = "".join(f"{c['label']}. {c['text']}\n" for c in row["question"]["choices"])
    return f"Question: {row['question']['stem'].strip()}\n{options}Answer:"


def read_rows(path: Path) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_arc_exemplars_are_the_first_train_rows(data_dir):
    train = read_rows(data_dir / "arc_challenge" / "ARC-Challenge-Train.jsonl")
    test = read_rows(data_dir / "arc_challenge" / "ARC-Challenge-Test.jsonl")
    k = 5
    context = FewshotContext.load("arc_challenge", str(data_dir), k)
    for q, row in zip(load_questions("arc_challenge", data_dir)[:4], test, strict=False):
        *shots, last = blocks(context.prompt(q))
        assert shots == [f"{arc_turn(r)} {r['answerKey']}" for r in train[:k]]
        assert last == arc_turn(row)
        own = normalise_text(q.question)
        assert own not in {normalise_text(r["question"]["stem"]) for r in train[:k]}


def test_arc_skips_a_train_row_that_is_the_evaluated_question(data_dir):
    """ARC's train split repeats some test questions; such a row is passed over, not shown."""
    train = read_rows(data_dir / "arc_challenge" / "ARC-Challenge-Train.jsonl")
    by_text = {normalise_text(r["question"]["stem"]): i for i, r in enumerate(train)}
    questions = load_questions("arc_challenge", data_dir)
    q, row = next(
        (q, by_text[normalise_text(q.question)])
        for q in questions
        if normalise_text(q.question) in by_text
    )
    k = row + 2
    *shots, _ = blocks(FewshotContext.load("arc_challenge", str(data_dir), k).prompt(q))
    kept = [r for i, r in enumerate(train) if i != row][:k]
    assert shots == [f"{arc_turn(r)} {r['answerKey']}" for r in kept]
    assert not any(s.startswith(arc_turn(train[row])) for s in shots)
    with pytest.raises(RBridgeError, match=rf"question {q.id!r} is itself one of the exemplars"):
        FewshotContext.load("arc_challenge", str(data_dir), len(train)).prompt(q)


def hub_layout_csqa(row: dict) -> dict:
    choices = row["question"]["choices"]
    return {
        "id": row["id"],
        "question": row["question"]["stem"],
        "choices": {"label": [c["label"] for c in choices], "text": [c["text"] for c in choices]},
        "answerKey": row["answerKey"],
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_csqa_is_lm_evals_commonsense_qa_prompt(tmp_path, data_dir):
    """Real CommonsenseQA records in the train file's layout (the dev file's first 40 rows stand
    in for the train split, which shared/data lacks), against lm-eval's first-n rendering."""
    dev = read_rows(data_dir / "commonsenseqa" / "dev_rand_split.jsonl")
    local = tmp_path / "data"
    write_jsonl(local / "commonsenseqa" / "train_rand_split.jsonl", dev[:40])
    write_jsonl(local / "commonsenseqa" / "dev_rand_split.jsonl", dev[40:43])
    files = {
        "train": write_jsonl(
            tmp_path / "hub" / "train.jsonl", [hub_layout_csqa(r) for r in dev[:40]]
        ),
        "validation": write_jsonl(
            tmp_path / "hub" / "dev.jsonl", [hub_layout_csqa(r) for r in dev[40:43]]
        ),
    }
    expected = lm_eval_prompts(
        LM_EVAL_TASKS / "commonsense_qa" / "default.yaml",
        files,
        tmp_path,
        5,
        3,
        fewshot_config={"sampler": "first_n"},
    )
    context = FewshotContext.load("csqa", str(local), 5)
    assert [context.prompt(q) for q in load_questions("csqa", local)] == expected


def test_mmlu_pro_is_lm_evals_mmlu_pro_prompt(tmp_path, data_dir):
    """Real MMLU-Pro questions of two subjects, some with options lm-eval strips; the validation
    rows are test rows given a rationale (shared/data holds no validation split), in the hub's
    layout, which the local file shares. Each subject reads its own exemplars."""
    rows = read_rows(data_dir / "mmlu_pro" / "test.jsonl.gz")
    subjects = ("math", "chemistry")
    validation = [
        {
            **r,
            "cot_content": f"A: Let's think step by step. Step {n}\nThe answer is ({r['answer']}).",
        }
        for s in subjects
        for n, r in enumerate([r for r in rows if r["category"] == s][:6])
    ]
    padded = {
        s: [r for r in rows if r["category"] == s and r["options"][0] != r["options"][0].strip()]
        for s in subjects
    }
    evaluated = [r for s in subjects for r in padded[s][:2]] + [
        next(r for r in rows if r["category"] == "physics")
    ]
    local = tmp_path / "data" / "mmlu_pro"
    write_jsonl(local / "validation.jsonl", validation)
    (local / "test.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in evaluated).encode())
    )
    context = FewshotContext.load("mmlu_pro", str(local.parent), 5)
    questions = load_questions("mmlu_pro", local.parent)
    for subject in subjects:
        expected = lm_eval_prompts(
            LM_EVAL_TASKS / "mmlu_pro" / f"mmlu_pro_{subject}.yaml",
            {"test": local / "test.jsonl.gz", "validation": local / "validation.jsonl"},
            tmp_path,
            5,
            2,
        )
        assert [context.prompt(q) for q in questions if q.extra["category"] == subject] == expected
    with pytest.raises(RBridgeError, match=r"question '\d+', field 'category': 'physics' is none"):
        context.prompt(questions[-1])


def test_mmlu_pro_descriptions_are_lm_evals(data_dir):
    files = sorted((LM_EVAL_TASKS / "mmlu_pro").glob("mmlu_pro_*.yaml"))
    assert len(files) == 14
    for path in files:
        config = load_yaml(path, resolve_func=False)
        subject = config["description"].split(" about ")[1].split(". Think")[0]
        assert config["description"] == MMLU_PRO_DESCRIPTION.format(subject)


def test_mmlu_pro_test_rows_are_no_exemplars(tmp_path, data_dir):
    local = tmp_path / "data" / "mmlu_pro"
    local.mkdir(parents=True)
    write_jsonl(local / "validation.jsonl", read_rows(data_dir / "mmlu_pro" / "test.jsonl.gz")[:3])
    with pytest.raises(
        RBridgeError, match=r"validation\.jsonl, line 1, field 'cot_content': .* empty"
    ):
        FewshotContext.load("mmlu_pro", str(tmp_path / "data"), 1)


def test_math500_uses_lm_evals_minerva_exemplars(data_dir):
    source = (LM_EVAL_TASKS / "minerva_math" / "utils.py").read_text(encoding="utf-8")
    q = load_questions("math500", data_dir)[0]
    prompt = FewshotContext.load("math500", str(data_dir), 4).prompt(q)
    shots = re.findall(r"Problem:\n(.*?)\n\nSolution: (.*?)\n\n(?=Problem:\n)", prompt, re.S)
    assert len(shots) == 4
    assert prompt.endswith(f"\n\nProblem:\n{q.question}\n\nSolution:")
    assert (
        prompt
        == "".join(f"Problem:\n{p}\n\nSolution: {s}\n\n" for p, s in shots)
        + f"Problem:\n{q.question}\n\nSolution:"
    )
    for problem, solution in shots:  # the texts as written in lm-eval's source (Python escapes)
        assert json.dumps(problem)[1:-1] in source and json.dumps(solution)[1:-1] in source
    finals = [
        re.search(r"The final answer is \$(.*)\$\. I hope it is correct\.$", s).group(1)
        for _, s in shots
    ]
    assert finals == ["[2,5)", "24", "16", "-\\frac{2}{3}"]
    with pytest.raises(RBridgeError, match=r"k=5: lm-eval's minerva_math .* has only 4"):
        FewshotContext.load("math500", None, 5)


@pytest.mark.parametrize(
    ("name", "missing"),
    [("csqa", "commonsenseqa/train_rand_split.jsonl"), ("mmlu_pro", "mmlu_pro/validation.jsonl")],
)
def test_local_data_without_the_split(data_dir, name, missing):
    with pytest.raises(RBridgeError) as info:
        FewshotContext.load(name, str(data_dir), 5)
    message = str(info.value)
    assert message.startswith(f"context=fewshot: {name} exemplars come from its ")
    assert f"expected {data_dir / missing};" in message
    assert message.endswith("or use context=qa or context=concat")


def test_humaneval_has_no_other_split(data_dir):
    with pytest.raises(
        RBridgeError, match=r"humaneval has no split besides .* use context=qa or context=concat"
    ):
        FewshotContext.load("humaneval", str(data_dir), 1)


def test_offline_hub_split(data_dir):
    with pytest.raises(
        RBridgeError,
        match=r"csqa exemplars come from the train split of tau/commonsense_qa, which could not "
        r"be loaded \(.*\); put that split at DIR/commonsenseqa/train_rand_split\.jsonl",
    ):
        FewshotContext.load("csqa", None, 5)


@pytest.mark.parametrize("k", [0, -1, True, 2.0])
def test_bad_k(k):
    with pytest.raises(RBridgeError, match=r"k=.* must be a whole number of 1 or more"):
        FewshotContext.load("gsm8k", None, k)
