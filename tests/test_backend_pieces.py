"""The request split against lm-eval's real `_encode_pair`: every request makes the model read
exactly the whole text's tokens and score exactly the planned ones, for random Unicode text,
whitespace runs and both tokenizer families."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lm_eval.models.huggingface import HFLM
from transformers import AutoTokenizer

from rbridge_tasks.backends.pieces import plan_requests
from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError

PIECES = [
    "the",
    " answer",
    " is",
    "18",
    ".",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\t",
    "$",
    "\\frac{2}{3}",
    "é",
    "€",
    "😀",
    "中文",
    "’s",
    " Therefore",
    "eggs",
    "-",
    " 16",
    "ab",
    "cd",
]
texts = (
    st.lists(
        st.one_of(st.sampled_from(PIECES), st.text(min_size=1, max_size=3)), min_size=1, max_size=40
    )
    .map("".join)
    .filter(lambda t: t.strip() != "")
)
prompts = st.sampled_from(
    [
        "Question: How many?\nAnswer:",
        "Q: x",
        'def f():\n    """doc"""\n',
        "Question: ends in space ",
    ]
)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def backend(request, gpt2_dir, llama_dir):
    model_dir = gpt2_dir if request.param == "gpt2" else llama_dir
    lm = HFLM(pretrained=str(model_dir), device="cpu", batch_size=1)
    return lm, ProxyTokenizer(AutoTokenizer.from_pretrained(model_dir))


def check_plan_against_lm_eval(lm: HFLM, tokenizer: ProxyTokenizer, prompt: str, trace: str):
    plan = plan_requests(prompt, trace, tokenizer)
    ids = tokenizer.encode([plan.text])[0].ids
    units = plan.units
    assert units[0].first == len(lm.tok_encode(plan.text[: plan.scored_char_start]))
    assert units[-1].end == len(ids)
    assert all(a.end == b.first for a, b in pairwise(units))
    assert len(plan.requests) == len(units)
    for (context, continuation), unit, first in zip(
        plan.requests, units, plan.request_first_unit, strict=True
    ):
        assert context + continuation == plan.text[: unit.char_end]
        context_enc, continuation_enc = lm._encode_pair(context, continuation)
        assert context_enc + continuation_enc == ids[: unit.end]
        assert len(context_enc) == units[first].first
    # the solver: requests' sums of arbitrary per-token values give back each unit's sum
    values = np.random.default_rng(0).normal(size=len(ids))
    sums = [
        values[units[first].first : unit.end].sum()
        for unit, first in zip(units, plan.request_first_unit, strict=True)
    ]
    expected = [values[u.first : u.end].sum() for u in units]
    np.testing.assert_allclose(plan.unit_loglikelihoods(sums), expected, atol=1e-9)
    return plan


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prompt=prompts, trace=texts)
def test_every_request_scores_exactly_the_planned_tokens(backend, prompt, trace):
    lm, tokenizer = backend
    check_plan_against_lm_eval(lm, tokenizer, prompt, trace)


def test_whitespace_runs_are_split_per_token_by_subtraction(backend):
    lm, tokenizer = backend
    plan = check_plan_against_lm_eval(
        lm, tokenizer, "Question: q\nAnswer:", "First line.\n\n\nSecond   line\t\tend"
    )
    # a request after a whitespace token starts earlier than its own unit
    assert any(first < i for i, first in enumerate(plan.request_first_unit))
    assert plan.unit_sizes.max() == 1  # ASCII text: every token is scored on its own


def test_trailing_whitespace_of_the_prompt_is_scored_with_the_trace(backend):
    lm, tokenizer = backend
    plan = check_plan_against_lm_eval(lm, tokenizer, "Question: q\nAnswer:\n", "Yes.")
    assert plan.text[plan.scored_char_start :] == "\n Yes."


def test_prompt_and_trace_merging_into_one_token_is_a_clear_error(backend):
    _, tokenizer = backend
    with pytest.raises(RBridgeError, match="merge into one token"):
        plan_requests("Question: q\nAnswer: eg", "gs", tokenizer, delimiter="", doc_id="7")
