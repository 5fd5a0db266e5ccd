"""The paper's baselines (`rbridge_baselines`) against a direct forward pass, through our
one-pass backend and through stock `hf` (its `loglikelihood` pieces): the same tokens, those
covering each continuation, are counted either way."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from trace_fixtures import write_benchmark_traces
from transformers import AutoModelForCausalLM, AutoTokenizer

from rbridge_tasks.harness.api import evaluate
from rbridge_tasks.questions.sources import BENCHMARK_NAMES, load_questions


@pytest.fixture(scope="module")
def traces(tmp_path_factory, frontier_dir):
    return write_benchmark_traces(tmp_path_factory.mktemp("baselines"), frontier_dir, 1)


def continuation_logprobs(model_dir, context: str, text: str) -> list[float]:
    """Log-probabilities of the tokens covering the continuation's characters."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    enc = tokenizer(context + text, return_offsets_mapping=True)
    first = next(i for i, (_, end) in enumerate(enc.offset_mapping) if end > len(context))
    with torch.no_grad():
        logits = model(torch.tensor([enc.input_ids])).logits[0].double()
    logprobs = torch.log_softmax(logits, -1)
    return [float(logprobs[i - 1, enc.input_ids[i]]) for i in range(first, len(enc.input_ids))]


@pytest.mark.parametrize("model", ["hf-rbridge", "hf"])
def test_baselines_match_a_direct_forward_pass(model, gpt2_dir, traces, data_dir):
    out = evaluate(
        model, ["rbridge_baselines"], model_args=f"pretrained={gpt2_dir}",
        metadata={"traces": str(traces), "data_dir": str(data_dir)}, bootstrap_iters=0,
    )  # fmt: skip
    for benchmark in BENCHMARK_NAMES:
        (sample,) = out["samples"][f"rbridge_baselines_{benchmark}"]
        rec = json.loads((traces / f"{benchmark}.jsonl").read_text().splitlines()[0])
        question = next(q for q in load_questions(benchmark, data_dir) if q.id == rec["id"])
        if question.choices:
            gold_text = dict(question.choices)[question.gold]
        elif benchmark == "humaneval":
            gold_text = question.gold  # the canonical solution
        else:
            gold_text = question.extra["solution"]
        expected_texts = {
            "gold": gold_text,
            "scalingbench": rec["trace"] + f"\nThe answer is {question.gold}.",
        }
        if benchmark != "humaneval":
            expected_texts["mpca"] = question.gold
        else:
            assert "mpca" not in sample
        context = sample["doc"]["prompt"] + " "
        for name, text in expected_texts.items():
            lps = continuation_logprobs(gpt2_dir, context, text)
            if name == "mpca":
                assert sample["mpca"] == pytest.approx(math.exp(sum(lps)), rel=1e-4, abs=1e-12)
                assert sample["mpca_nll"] == pytest.approx(-sum(lps), abs=1e-4)
                continue
            assert sample[f"{name}_nll"] == pytest.approx(-np.mean(lps), abs=1e-5), (
                benchmark,
                name,
            )
            bpb = -sum(lps) / math.log(2) / len(text.encode("utf-8"))
            assert sample[f"{name}_bpb"] == pytest.approx(bpb, abs=1e-5), (benchmark, name)
    hib = out["higher_is_better"]["rbridge_baselines_gsm8k"]
    assert hib["mpca"] is True and hib["gold_nll"] is False
    assert "gold_nll,none" in out["results"]["rbridge_baselines"]
