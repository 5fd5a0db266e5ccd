"""Answer extraction and checking on the real gold answers of shared/data."""

from __future__ import annotations

import glob
import json
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rbridge_tasks.questions.sources import load_questions
from rbridge_tasks.traces.answers import (
    extract_answer,
    is_correct,
    last_boxed,
    math_equivalent,
    normalise_math_answer,
)
from rbridge_tasks.traces.humaneval_exec import check_humaneval, run_program


def judge(question, completion: str) -> bool:
    return is_correct(question, extract_answer(question, completion))


def test_gsm8k_every_gold_is_correct_and_off_by_one_is_not(data_dir):
    for q in load_questions("gsm8k", data_dir):
        gold = q.gold.replace(",", "")
        assert judge(q, f"Some steps, 3 + 4 = 7.\nThe answer is {q.gold}."), q.id
        assert judge(q, f"So she makes \\(\\boxed{{{q.gold}}}\\) dollars."), q.id
        assert not judge(q, f"3 + 4 = 7.\nThe answer is {int(gold) + 1}."), q.id
        assert not judge(q, "I do not know."), q.id


def test_gsm8k_agrees_with_the_gpt4o_mini_grades(data_dir):
    """Independent grading: the Rereading authors' `score` of each of 2 x 1319 completions."""
    questions = load_questions("gsm8k", data_dir)
    path = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        for generation in ("cot", "vanilla"):
            output = row[generation]
            assert judge(questions[row["id"]], output["generation"][0]) == bool(output["score"])


def test_math500_every_gold_is_correct_and_other_golds_are_not(data_dir):
    questions = load_questions("math500", data_dir)
    for i, q in enumerate(questions):
        assert judge(q, f"Work.\nThe answer is $\\boxed{{{q.gold}}}$."), q.id
        other = questions[(i + 1) % len(questions)].gold
        if normalise_math_answer(other) != normalise_math_answer(q.gold):
            assert not judge(q, f"The answer is $\\boxed{{{other}}}$."), (q.id, other)


def test_math500_reference_solutions_box_an_equivalent_answer(data_dir):
    """The MATH solutions' own \\boxed{} (written independently of the `answer` field)."""
    rows = [
        json.loads(line) for line in (data_dir / "math500" / "test.jsonl").read_text().splitlines()
    ]
    questions = {q.id: q for q in load_questions("math500", data_dir)}
    for row in rows:
        assert judge(questions[row["unique_id"]], row["solution"]), row["unique_id"]


@pytest.mark.parametrize(
    ("answer", "gold", "same"),
    [
        ("\\frac12", "\\frac{1}{2}", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\dfrac{3}{4}", "\\frac34", True),
        ("10\\text{ cm}", "10", True),
        ("x = 5", "5", True),
        ("3/4", "\\frac{3}{4}", True),
        ("90^\\circ", "90", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
        ("2.50", "2.5", True),
        ("\\frac{1}{3}", "\\frac{1}{2}", False),
        ("(3,\\frac{\\pi}{3})", "(3,\\frac{\\pi}{2})", False),
        ("-5", "5", False),
    ],
)
def test_math_equivalence(answer, gold, same):
    assert math_equivalent(answer, gold) is same


def test_last_boxed_balances_braces():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}} c") == "\\frac{1}{2}"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("\\boxed{unclosed") is None


@pytest.mark.parametrize("benchmark", ["arc_challenge", "csqa", "mmlu_pro"])
def test_multiple_choice_every_gold_is_correct_and_another_letter_is_not(data_dir, benchmark):
    for q in load_questions(benchmark, data_dir):
        labels = [label for label, _ in q.choices]
        wrong = next(label for label in labels if label != q.gold)
        assert judge(q, f"Reasoning.\nThe answer is ({q.gold})."), q.id
        assert judge(q, f"Thus, the best answer is \\(\\boxed{{{q.gold}}}\\)."), q.id
        assert not judge(q, f"Reasoning.\nThe answer is ({wrong})."), q.id
        assert not judge(q, "No idea."), q.id


def test_csqa_agrees_with_the_gpt4o_mini_extraction_and_grades(data_dir):
    questions = load_questions("csqa", data_dir)
    path = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "commonsenseqa_*.jsonl"))[0]
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        output = row["cot"]
        text = output["generation"][0]
        question = questions[row["id"]]
        assert extract_answer(question, text) == output["answer"], row["id"]
        assert judge(question, text) == bool(output["score"]), row["id"]


def test_mmlu_pro_agrees_with_the_official_extraction_on_gemini_outputs(data_dir):
    """MMLU-Pro's own script took the first match of `answer is \\(?([A-J])\\)?`; where that
    matches once, not as the start of a word ('(Cannot be determined)' gave 'C', 'answer is
    Effectiveness' gave 'E'), and no other answer marker is present, the extractions must agree
    (where it matched nothing, the script guessed at random)."""
    archive = zipfile.ZipFile(data_dir / "mmlu_pro" / "model_outputs_gemini-1.5-pro-002_5shots.zip")
    rows = json.loads(archive.read(archive.namelist()[0]))
    questions = {q.id: q for q in load_questions("mmlu_pro", data_dir)}
    official = re.compile(r"answer is \(?([A-J])\)?")
    compared = 0
    for row in rows:
        text = row["model_outputs"]
        matches = list(official.finditer(text))
        if (
            len(matches) == 1
            and not text[matches[0].end() : matches[0].end() + 1].isalpha()
            and not re.search(r"(?i)answer\s*:|\\boxed", text)
        ):
            compared += 1
            question = questions[str(row["question_id"])]
            assert extract_answer(question, text) == row["pred"], row["question_id"]
    assert compared > 10_000


def test_humaneval_canonical_solutions_pass_and_a_wrong_body_fails(data_dir):
    questions = load_questions("humaneval", data_dir)
    with ThreadPoolExecutor(max_workers=8) as pool:
        passed = list(pool.map(lambda q: check_humaneval(q, q.gold, timeout=20), questions))
        wrong = list(
            pool.map(lambda q: check_humaneval(q, "    return None\n", timeout=20), questions[::8])
        )
    assert [r.detail for r in passed if not r.passed] == []
    assert not any(r.passed for r in wrong)


def test_humaneval_whole_function_in_a_code_block(data_dir):
    """The form the generate prompt asks for: explanation, then the full function in a block."""
    q = load_questions("humaneval", data_dir)[0]
    signature_and_doc = q.question[q.question.index("def ") :]
    completion = (
        f"We compare every pair.\n```python\n{signature_and_doc}{q.gold}```\nThis is quadratic."
    )
    answer = extract_answer(q, completion)
    assert answer.startswith("def has_close_elements")
    assert is_correct(q, answer)
    broken = answer.replace("return True", "return False")
    assert not is_correct(q, broken)


def test_humaneval_runaway_code_is_killed_at_the_time_limit():
    start = time.monotonic()
    result = run_program("while True:\n    pass\n", timeout=1.0)
    assert not result.passed and "timed out" in result.detail
    assert time.monotonic() - start < 5


def test_humaneval_never_runs_in_process(tmp_path):
    """A program that would leave a mark in this process's state leaves none."""
    marker = tmp_path / "marker"
    result = run_program(
        f"import os\nos.environ['RBRIDGE_LEAK'] = '1'\nopen({str(marker)!r}, 'w').write('ran')\n",
        timeout=10,
    )
    assert result.passed and marker.read_text() == "ran"
    import os

    assert "RBRIDGE_LEAK" not in os.environ
