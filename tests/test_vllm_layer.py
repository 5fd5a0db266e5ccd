"""The vLLM-specific layer of `vllm-rbridge`, against vLLM's real API.

vLLM cannot be installed on the CI machines (CUDA-only wheels), so this module is skipped there;
the chain logic it shares with `hf-rbridge` is tested through the HF path (test_fast_path.py).
"""

from __future__ import annotations

import random

import pytest

pytest.importorskip("vllm")

from lm_eval.models.vllm_causallms import VLLM
from vllm.logprobs import Logprob

from rbridge_tasks.chains import Chain, Member
from rbridge_tasks.vllm_rbridge import VLLMRBridgeLM, position_scores


class _Output:
    def __init__(self, prompt_logprobs):
        self.prompt_logprobs = prompt_logprobs


def test_chain_answers_equal_lm_evals_own_parser():
    rng = random.Random(0)
    tokens = [rng.randrange(50) for _ in range(40)]
    prompt_logprobs = [None]
    for t in tokens[1:]:
        top = rng.randrange(50)
        entry = {t: Logprob(logprob=-rng.random() * 5)}
        if top != t:
            entry[top] = Logprob(logprob=-rng.random() * 0.1)
        prompt_logprobs.append(entry)
    members = tuple(Member(i, c, n) for i, (c, n) in enumerate([(3, 7), (3, 12), (9, 40)]))
    chain = Chain(tuple(tokens), members)
    got = chain.answers(*position_scores(tokens, prompt_logprobs), total=sum)
    for member, answer in zip(members, got, strict=True):
        expected = VLLM._parse_logprobs(
            tokens[: member.length],
            _Output(prompt_logprobs[: member.length]),
            member.context_length,
        )
        assert answer == expected


def test_the_class_is_lm_evals_vllm():
    assert issubclass(VLLMRBridgeLM, VLLM)
