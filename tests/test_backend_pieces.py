"""The pieces adapter (any lm-eval model's `loglikelihood` answering document requests).

The request split against lm-eval's real `_encode_pair`: every request makes the model read
exactly the whole text's tokens and score exactly the planned ones, for random Unicode text,
whitespace runs and both tokenizer families.

Edge cases found by an independent reference check, each through plain `lm_eval` by subprocess
(stock `hf`, pieces mode) against `tests/reference.py`:

- every weight 0 (the most confident frontier token has empty text): the weighted mean falls back
  to the plain mean and the document is flagged, instead of a ZeroDivisionError after the run;
- traces starting with a newline or a digit, where the delimiter's space is a token of its own:
  it is context, not scored, in every metric;
- a document longer than the model's window: one clear error instead of inconsistent numbers;
- a backend without a fast tokenizer to split traces with: one clear line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import reference
from helpers import task_manager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lm_eval.models.huggingface import HFLM
from trace_fixtures import real_texts, write_jsonl
from transformers import AutoTokenizer

from rbridge_tasks import tasks_path
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


def whitespace_tokens(text: str, logprob: float) -> list[dict]:
    return [{"text": t, "logprob": logprob} for t in re.findall(r"\s*\S+|\s+", text)]


@pytest.fixture(scope="module")
def edge_pack(tmp_path_factory) -> Path:
    (id0, q0, t0), (id1, q1, t1), (id2, q2, _) = real_texts("gsm8k", 3)
    zero = [{"text": "", "logprob": 0.0}, *whitespace_tokens(t0, -2.0)]  # max has no letters
    newline = "\n" + t1
    digits = "18 eggs are left, so she makes 18 * 2 = 36 dollars."
    records = [
        {"id": id0, "benchmark": "gsm8k", "question": q0, "trace": t0,
         "frontier_model": "hand", "frontier_tokens": zero},
        {"id": id1, "benchmark": "gsm8k", "question": q1, "trace": newline,
         "frontier_model": "hand", "frontier_tokens": [
             *whitespace_tokens(newline, -0.5), {"text": "", "logprob": -0.1}]},
        {"id": id2, "benchmark": "gsm8k", "question": q2, "trace": digits,
         "frontier_model": "hand", "frontier_tokens": [
             {"text": "18", "logprob": -0.01}, *whitespace_tokens(digits[2:], -1.0)]},
    ]  # fmt: skip
    return write_jsonl(tmp_path_factory.mktemp("edge") / "gsm8k.jsonl", records)


def lm_eval(model_dir: Path, out: Path, *metadata: str, model_args: str = ""):
    command = [sys.executable, "-m", "lm_eval", "--include_path", str(tasks_path()),
               "--model", "hf", "--model_args", f"pretrained={model_dir}{model_args}",
               "--device", "cpu", "--tasks", "rbridge_gsm8k", "--batch_size", "16",
               "--output_path", str(out), "--log_samples", "--metadata", *metadata]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module", params=["gpt2", "llama3"])
def edge_run(request, edge_pack, data_dir, tmp_path_factory):
    model_dir = request.getfixturevalue(f"{request.param}_dir")
    out = tmp_path_factory.mktemp("out")
    done = lm_eval(model_dir, out, f"traces={edge_pack}", f"data_dir={data_dir}",
                   "minmax_on=frontier_tokens", "aggregation=weighted_mean")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    samples = [json.loads(x) for x in next(out.rglob("samples_*.jsonl")).read_text().splitlines()]
    return request.param, model_dir, {s["doc"]["id"]: s for s in samples}, done.stderr


def records_of(pack: Path) -> dict[str, dict]:
    return {json.loads(x)["id"]: json.loads(x) for x in pack.read_text().splitlines()}


def expected(model_dir, sample, rec) -> dict:
    return reference.document(
        model_dir, sample["doc"]["prompt"] + " ", rec, minmax_on="frontier_tokens",
        aggregation="weighted_mean", pieces=True,
    )  # fmt: skip


def test_all_weights_zero_is_the_plain_mean_and_flagged(edge_run, edge_pack):
    _, model_dir, samples, stderr = edge_run
    rec = records_of(edge_pack)["0"]
    sample = samples["0"]
    want = expected(model_dir, sample, rec)
    assert want["rbridge_weight_sum"] == 0 and want["rbridge_zero_weight"] == 1
    assert sample["rbridge_zero_weight"] == 1
    assert sample["rbridge_nll"] == pytest.approx(want["trace_nll"], abs=1e-5)
    assert "every proxy-token weight of document '0'" in stderr


def test_the_delimiter_space_alone_is_not_scored(edge_run, edge_pack):
    _, model_dir, samples, _ = edge_run
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for doc_id in ("1", "2"):
        rec, sample = records_of(edge_pack)[doc_id], samples[doc_id]
        context = sample["doc"]["prompt"] + " "
        enc = tokenizer(context + rec["trace"], return_offsets_mapping=True)
        covering = [e for _, e in enc.offset_mapping if e > len(context)]
        assert sample["trace_tokens"] == len(covering)
        want = expected(model_dir, sample, rec)
        for metric in ("rbridge_nll", "trace_nll", "trace_bpb", "rbridge_weight_sum"):
            assert sample[metric] == pytest.approx(want[metric], abs=1e-5), (doc_id, metric)


def test_a_space_token_before_a_digit_exists_under_llama3_style_tokenizers(edge_run, edge_pack):
    family, model_dir, samples, _ = edge_run
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    context = samples["2"]["doc"]["prompt"] + " "
    enc = tokenizer(context + records_of(edge_pack)["2"]["trace"], return_offsets_mapping=True)
    alone = [(s, e) for s, e in enc.offset_mapping if s < len(context) <= e]
    # GPT-2 style glues the space to "18"; the Llama-3 split keeps it alone, ending at the trace
    assert alone, alone
    if family == "llama3":
        assert alone[-1][1] == len(context)


def test_a_document_longer_than_the_window_is_refused_in_pieces_mode(
    gpt2_dir, edge_pack, data_dir, tmp_path
):
    done = lm_eval(gpt2_dir, tmp_path, f"traces={edge_pack}", f"data_dir={data_dir}",
                   model_args=",max_length=120")  # fmt: skip
    assert done.returncode != 0
    lines = [x for x in done.stderr.splitlines() if "rbridge_gsm8k: document" in x]
    assert lines and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert re.search(
        r"document '\d+' is \d+ proxy tokens \(context and trace\), more than the 119 that a "
        r"stock backend scores without truncating",
        lines[0],
    )


def test_a_lone_surrogate_in_a_trace_is_one_located_error(gpt2_dir, data_dir, tmp_path):
    (doc_id, question, _), *_ = real_texts("gsm8k", 1)
    line = json.dumps(
        {"id": doc_id, "benchmark": "gsm8k", "question": question, "trace": "So \ud800 eggs.",
         "frontier_model": "hand", "frontier_tokens": [{"text": "So \ud800 eggs.", "logprob": -1}]}
    )  # fmt: skip
    assert "\\ud800" in line  # JSON escapes it; decoding gives back a lone surrogate
    pack = tmp_path / "gsm8k.jsonl"
    pack.write_text(line + "\n", encoding="utf-8")
    done = lm_eval(gpt2_dir, tmp_path / "out", f"traces={pack}", f"data_dir={data_dir}")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert re.search(rf"{re.escape(str(pack))}, line 1, id '{doc_id}', field 'trace'", done.stderr)


def test_a_backend_without_a_fast_tokenizer_says_what_to_do(gsm8k_pack, data_dir):
    """Every lm-eval model answers document requests through its `loglikelihood`; one that has
    no Hugging Face fast tokenizer to split traces with gets one clear line."""
    from lm_eval import simple_evaluate
    from lm_eval.models.dummy import DummyLM

    manager = task_manager(traces=gsm8k_pack, data_dir=data_dir)
    with pytest.raises(RBridgeError, match=r"backend DummyLM has no Hugging Face fast tokenizer"):
        simple_evaluate(model=DummyLM(), tasks=["rbridge_gsm8k"], task_manager=manager,
                        bootstrap_iters=0)  # fmt: skip
