"""The vLLM layer of `vllm-rbridge`: reading vLLM's prompt logprobs into the shared response.

vLLM cannot be installed on the CI machines (CUDA-only wheels). Its prompt logprobs are built here
from a transformers forward pass exactly as vLLM returns them (per position, the top-k tokens and
the prompt token, each with its logprob and vocabulary rank), in vLLM's own `Logprob` type where
vLLM imports and otherwise in a record with the same fields. The parsed response must equal the
one `hf-rbridge` computes from the full distribution, except the entropy, which vLLM cannot give.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance

from rbridge_tasks.backends.hf import HFRBridgeLM
from rbridge_tasks.backends.response import (
    TOP_K,
    EncodedDocument,
    encode_documents,
    response_from_prompt_logprobs,
    token_budget_chunks,
)
from rbridge_tasks.backends.tokenizer import ProxyTokenizer

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
if HAVE_VLLM:
    from vllm.logprobs import Logprob
else:

    @dataclass
    class Logprob:  # the fields of vllm.logprobs.Logprob
        logprob: float
        rank: int | None = None
        decoded_token: str | None = None


def vllm_style_prompt_logprobs(logprobs: torch.Tensor, ids: list[int]) -> list:
    """Position p: {top-k token: Logprob, prompt token: Logprob}, ranks counted as vLLM does."""
    out = [None]
    for p in range(1, len(ids)):
        row = logprobs[p - 1]
        entry = {}
        for token in [*row.topk(TOP_K).indices.tolist(), ids[p]]:
            rank = int((row >= row[token]).sum())  # vLLM's batched_count_greater_than
            entry[token] = Logprob(logprob=float(row[token]), rank=rank)
        out.append(entry)
    return out


def test_vllm_prompt_logprobs_give_the_hf_response(gpt2_dir):
    lm = HFRBridgeLM(pretrained=str(gpt2_dir), device="cpu", batch_size=2)
    context, trace = "Question: What is 12 + 30?\nAnswer: ", "12 + 30 = 42, so the answer is 42."
    request = Instance("rbridge_document", doc={"id": "x"}, arguments=(context, trace), idx=0)
    (hf,) = lm.rbridge_document([request], disable_tqdm=True)
    (doc,) = encode_documents(
        ProxyTokenizer(lm.tokenizer, lm.add_bos_token, lm.prefix_token_id),
        [(context, trace)],
        window=lm.max_length - 1,
        prefix_token_id=lm.prefix_token_id,
        names=["x"],
        max_length=lm.max_length,
    )
    with torch.no_grad():
        logits = lm.model(torch.from_numpy(doc.ids)[None]).logits[0]
    prompt_logprobs = vllm_style_prompt_logprobs(torch.log_softmax(logits.float(), -1), doc.ids)
    got = response_from_prompt_logprobs(doc, prompt_logprobs, hf.vocab_size)
    np.testing.assert_array_equal(got.token_ids, hf.token_ids)
    np.testing.assert_array_equal(got.spans, hf.spans)
    np.testing.assert_allclose(got.logprobs, hf.logprobs, atol=1e-5)
    np.testing.assert_allclose(got.top_logprobs, hf.top_logprobs, atol=1e-5)
    np.testing.assert_array_equal(got.rank, hf.rank)
    assert got.entropy is None and not np.isnan(hf.entropy).any()


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (CUDA-only wheels)")
def test_the_class_is_lm_evals_vllm():
    from lm_eval.models.vllm_causallms import VLLM

    from rbridge_tasks.backends.vllm import VLLMRBridgeLM

    assert issubclass(VLLMRBridgeLM, VLLM)


def test_documents_go_to_vllm_in_bounded_consecutive_chunks():
    lengths = [5, 3, 9, 1, 1, 12, 4, 4]
    docs = [EncodedDocument(ids=np.zeros(n, np.int64), first_scored=1, spans=np.zeros((0, 2)),
                          truncated_tokens=0)
            for n in lengths]  # fmt: skip
    for budget in (1, 8, 10, 13, 100):
        chunks = token_budget_chunks(docs, budget)
        assert [i for chunk in chunks for i in chunk] == list(range(len(docs)))
        for chunk in chunks:
            tokens = sum(lengths[i] for i in chunk)
            assert tokens <= budget or len(chunk) == 1, (budget, list(chunk))
        # greedy: the next document would have overflowed each chunk
        for chunk, following in itertools.pairwise(chunks):
            assert sum(lengths[i] for i in chunk) + lengths[following[0]] > budget


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (CUDA-only wheels)")
def test_vllms_flat_logprobs_read_like_its_nested_ones(gpt2_dir):
    from vllm.logprobs import FlatLogprobs

    nested = vllm_style_prompt_logprobs(torch.log_softmax(torch.randn(6, 50), -1), list(range(7)))
    flat = FlatLogprobs()
    for entry in nested:
        flat.append(entry)
    doc = EncodedDocument(ids=np.arange(7), first_scored=2, spans=np.array([(0, 1)] * 5),
                          truncated_tokens=0)  # fmt: skip
    a = response_from_prompt_logprobs(doc, nested, 50)
    b = response_from_prompt_logprobs(doc, flat, 50)
    np.testing.assert_array_equal(a.logprobs, b.logprobs)
    np.testing.assert_array_equal(a.rank, b.rank)
    np.testing.assert_array_equal(a.top_logprobs, b.top_logprobs)
