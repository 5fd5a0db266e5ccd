"""`hf-rbridge` answers every request exactly as stock `hf` does, from one pass per chain."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval_runs import task_manager
from test_task_end_to_end import check_against_independent, run_and_load
from trace_fixtures import real_texts, record, write_benchmark_traces, write_jsonl

from rbridge_tasks.chains import find_chains
from rbridge_tasks.hf_rbridge import HFRBridgeLM

# Per scored token: stock `hf` itself, run with batch size 1 instead of 32, moves a request's
# log-probability by up to one float32 rounding step per token (9.5e-7 measured on these models),
# and a request after a whitespace run scores the whole run (up to ~15 tokens of indentation).
TOLERANCE_PER_TOKEN = 1e-5


@pytest.fixture(scope="module")
def six_traces(tmp_path_factory, frontier_dir):
    return write_benchmark_traces(tmp_path_factory.mktemp("fast"), frontier_dir, 1)


def task_requests(model_dir, traces, data_dir) -> list[Instance]:
    manager = task_manager(pretrained=model_dir, traces=traces, data_dir=data_dir)
    instances = []
    for task in manager.load(["rbridge"])["tasks"].values():
        task.build_all_requests()
        instances += task.instances
    return instances


def greedy_chain(lm: HFLM, prompt: str, steps: int) -> list[Instance]:
    """A chain whose continuations are the model's own argmax tokens: is_greedy must be True.

    Stops where the argmax token would not survive re-tokenization of the text.
    """
    ids = lm.tok_encode(prompt)
    text = prompt
    requests = []
    for i in range(steps):
        with torch.no_grad():
            next_id = int(lm.model(torch.tensor([ids])).logits[0, -1].argmax())
        piece = lm.tokenizer.decode([next_id])
        if lm.tok_encode(text + piece) != [*ids, next_id]:
            break
        requests.append(Instance("loglikelihood", doc={}, arguments=(text, piece), idx=i))
        ids, text = [*ids, next_id], text + piece
    return requests


def longest_greedy_chain(lm: HFLM, steps: int = 8) -> list[Instance]:
    prompts = [
        f"Question: {q}\nAnswer:{end}"
        for _, q, _ in real_texts("gsm8k", 6)
        for end in ("", " The", " We")
    ]
    return max((greedy_chain(lm, p, steps) for p in prompts), key=len)


def compare(stock: HFLM, fast: HFRBridgeLM, requests: list[Instance]) -> None:
    expected = stock.loglikelihood(requests, disable_tqdm=True)
    got = fast.loglikelihood(requests, disable_tqdm=True)
    assert len(got) == len(expected)
    for request, (e_ll, e_greedy), (g_ll, g_greedy) in zip(requests, expected, got, strict=True):
        scored = len(stock._encode_pair(*request.args)[1])
        assert g_ll == pytest.approx(e_ll, abs=TOLERANCE_PER_TOKEN * scored), request.args[1]
        assert g_greedy == e_greedy


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_every_request_of_the_six_tasks_matches_stock_hf(
    family, gpt2_dir, llama_dir, six_traces, data_dir
):
    model_dir = gpt2_dir if family == "gpt2" else llama_dir
    stock = HFLM(pretrained=str(model_dir), device="cpu", batch_size=32)
    fast = HFRBridgeLM(pretrained=str(model_dir), device="cpu", batch_size=8)
    requests = task_requests(model_dir, six_traces, data_dir)
    greedy = longest_greedy_chain(stock)
    assert len(greedy) >= 2  # a chain of two or more argmax tokens
    requests += greedy
    encoded = [stock._encode_pair(*r.args) for r in requests]
    chains, leftover = find_chains(encoded, stock.max_length + 1)
    assert len(leftover) == 0 and len(chains) == 6 + 1  # one chain per document, all served
    compare(stock, fast, requests)
    assert all(g for _, g in fast.loglikelihood(greedy, disable_tqdm=True))


def test_requests_outside_chains_take_the_stock_path(gpt2_dir, six_traces, data_dir):
    stock = HFLM(pretrained=str(gpt2_dir), device="cpu", batch_size=16, max_length=160)
    fast = HFRBridgeLM(pretrained=str(gpt2_dir), device="cpu", batch_size=16, max_length=160)
    requests = task_requests(gpt2_dir, six_traces, data_dir)
    shuffled = random.Random(0).sample(requests, 150)  # no longer consecutive: no chains
    encoded = [stock._encode_pair(*r.args) for r in shuffled]
    assert len(find_chains(encoded, stock.max_length + 1)[0]) < 10
    compare(stock, fast, shuffled)
    # with max_length 160 the longer requests are truncated by lm-eval: those go the stock way
    in_order = requests[:250]
    encoded = [stock._encode_pair(*r.args) for r in in_order]
    assert any(len(c) + len(k) > 161 for c, k in encoded)
    compare(stock, fast, in_order)


def test_rbridge_eval_with_hf_rbridge_matches_independent_computation(
    gpt2_dir, data_dir, frontier_dir, tmp_path
):
    traces = write_jsonl(
        tmp_path / "gsm8k.jsonl",
        [record(frontier_dir, "gsm8k", i, q, t) for i, q, t in real_texts("gsm8k", 3)],
    )
    rbridge_eval = [sys.executable, "-m", "rbridge_tasks.cli", "eval"]
    out = tmp_path / "out"
    results, samples = run_and_load(rbridge_eval, "hf-rbridge", gpt2_dir, traces, data_dir, out)
    assert results["config"]["model"] == "hf-rbridge"
    check_against_independent(gpt2_dir, traces, results, samples)


def test_plain_python_selection():
    from lm_eval.api.registry import get_model

    import rbridge_tasks.models  # noqa: F401

    assert get_model("hf-rbridge") is HFRBridgeLM
    done = subprocess.run(
        [sys.executable, "-c", "import rbridge_tasks.models, sys; print('vllm' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"  # vllm-rbridge is registered without importing vLLM


@pytest.mark.parametrize("add_bos_token", [None, True, False])
def test_batched_encodings_equal_stock_tok_encode(llama_dir, add_bos_token):
    kwargs = {} if add_bos_token is None else {"add_bos_token": add_bos_token}
    stock = HFLM(pretrained=str(llama_dir), device="cpu", **kwargs)
    fast = HFRBridgeLM(pretrained=str(llama_dir), device="cpu", **kwargs)
    strings = ["Question: eggs?\nAnswer:", "<s>Question: already has BOS", " leading space", "é😀"]
    assert fast._encode_many(strings) == [stock.tok_encode(s) for s in strings]
    # the setting matters: the tokenizer's own BOS unless add_bos_token=False
    assert (stock.tok_encode(strings[0])[0] == stock.tokenizer.bos_token_id) == (
        add_bos_token is not False
    )
