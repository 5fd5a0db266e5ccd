"""The scored part of a completion: the final answer (line or closing sentence) is cut off."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rbridge_tasks.records.answer_lines import _split_answer_line, scored_span

CASES = [
    # (completion, scored trace, stripped tail): the answer-line rule of answer_lines.py
    ("Step 1: 2 + 2 = 4.\nThe answer is 4.", "Step 1: 2 + 2 = 4.", "\nThe answer is 4."),
    (
        " 3 + 4 = 7\n\nFinal Answer: The final answer is $7$. I hope it is correct.\n",
        "3 + 4 = 7",
        "\n\nFinal Answer: The final answer is $7$. I hope it is correct.\n",
    ),
    # a closing sentence that does not start its line (Gemini MMLU-Pro)
    (
        "A stack is Last-In, First-Out (LIFO).  The answer is (C).\n",
        "A stack is Last-In, First-Out (LIFO).",
        "  The answer is (C).\n",
    ),
    # a boxed answer inside the closing sentence (GPT-4o-mini)
    (
        "We add 2 and 1.\n\nThus, Joey is winning by \\(\\boxed{5}\\) points.",
        "We add 2 and 1.",
        "\n\nThus, Joey is winning by \\(\\boxed{5}\\) points.",
    ),
    (
        "x = 3.\nPutting this together, the final answer is \\(\\boxed{306}\\).",
        "x = 3.",
        "\nPutting this together, the final answer is \\(\\boxed{306}\\).",
    ),
    # a bare boxed display block with its unfinished lead-in sentence
    (
        "So 2 + 1 = 3.\n\nThus, the final answer is:\n\n\\[\n\\boxed{3}\n\\]",
        "So 2 + 1 = 3.",
        "\n\nThus, the final answer is:\n\n\\[\n\\boxed{3}\n\\]",
    ),
    (
        "Doctor Jones has 1 hour left. Therefore, the final answer is:\n\n\\[\n\\boxed{1}\n\\]",
        "Doctor Jones has 1 hour left.",
        " Therefore, the final answer is:\n\n\\[\n\\boxed{1}\n\\]",
    ),
    (
        "Sum is 1490.\n\nThus, the number of porcupines will be \n\n\\(\\boxed{1490}\\).",
        "Sum is 1490.",
        "\n\nThus, the number of porcupines will be \n\n\\(\\boxed{1490}\\).",
    ),
    # a finished sentence before a bare box stays: it is reasoning, not a lead-in
    (
        "Now, we give the answer in the required format.\n\n\\(\\boxed{160}\\)",
        "Now, we give the answer in the required format.",
        "\n\n\\(\\boxed{160}\\)",
    ),
    # consecutive answer lines all go (Gemini on MMLU-Pro)
    (
        "So k = 3c/2.\n\nThe answer is (B).\nFinal Answer: The final answer is $\\boxed{B}$\n",
        "So k = 3c/2.",
        "\n\nThe answer is (B).\nFinal Answer: The final answer is $\\boxed{B}$\n",
    ),
    # nothing to strip: the text is all reasoning
    ("First 2 + 2 = 4.\nThen 4 * 3 = 12.", "First 2 + 2 = 4.\nThen 4 * 3 = 12.", ""),
    # only an answer: nothing is left to score
    ("\\boxed{D}", "", "\\boxed{D}"),
    ("The answer is (A).\n", "", "The answer is (A).\n"),
]


@pytest.mark.parametrize(("completion", "trace", "tail"), CASES)
def test_scored_span(completion, trace, tail):
    span = scored_span(completion)
    assert span.trace(completion) == trace
    assert span.stripped_tail(completion) == tail


@given(st.text(max_size=200))
def test_span_is_a_stripped_slice_that_keeps_everything_answer_lines_keeps_not(text):
    span = scored_span(text)
    assert 0 <= span.start <= span.end <= len(text)
    assert text[: span.start].strip() == ""
    trace = span.trace(text)
    assert trace == trace.strip() or trace == ""
    kept, tail = _split_answer_line(text)
    if tail:  # whatever the answer_lines rule strips goes (and maybe more answer lines above)
        assert kept.strip().startswith(trace)


def test_gpt4o_mini_traces_lose_their_boxed_answer(data_dir):
    """On the 2 x 1319 real GSM8K completions: the final boxed answer leaves the scored trace
    (a handful continue after the box, e.g. '\\] seconds.', and are left whole)."""
    path = glob.glob(str(data_dir / "traces_gpt4o_mini_rereading" / "gsm_*.jsonl"))[0]
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    for generation in ("cot", "vanilla"):
        texts = [row[generation]["generation"][0] for row in rows]
        kept_box = 0
        for text in texts:
            span = scored_span(text)
            trace, tail = span.trace(text), span.stripped_tail(text)
            assert trace, "every GPT-4o-mini GSM8K completion has reasoning"
            assert trace + tail == text[span.start :]
            kept_box += "\\boxed" not in tail
        assert kept_box <= 10, f"{generation}: {kept_box} traces kept their boxed answer"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Add 2 and 2.\nThe answer is 4.", "Add 2 and 2."),
        ("Add.\n\nFinal Answer: The final answer is $4$. I hope it is correct.", "Add."),
        ("Add.\nThe answer is 4\nI hope it is correct.\n", "Add."),
        ("Add 16 - 3 - 4 = 9.\n#### 9", "Add 16 - 3 - 4 = 9."),
        ("So the answer is (B).", ""),  # nothing but the answer: nothing to score
        ("No answer line here.", "No answer line here."),
    ],
)
def test_final_answer_line_is_stripped(text, kept):
    assert scored_span(text).trace(text) == kept
