"""`vllm-rbridge`: lm-eval's `VLLM`, answering request chains from one prefill each.

A thin layer: chain detection and the per-member arithmetic are shared with `hf-rbridge`
(`rbridge_tasks.chains`, tested through the HF path); this module only asks vLLM for the prompt
logprobs of each chain's longest text, exactly as lm-eval's own `_loglikelihood_tokens` does.
Importing it needs vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from lm_eval.api.registry import register_model
from lm_eval.models.vllm_causallms import VLLM

from rbridge_tasks.chains import batches, find_chains
from rbridge_tasks.encoding_cache import BatchEncodingMixin


def position_scores(
    tokens: Sequence[int], prompt_logprobs: Sequence[dict[int, Any] | None]
) -> tuple[list[float], np.ndarray]:
    """vLLM prompt logprobs -> (logprob of token p + 1, was it the top token) per position p.

    Mirrors `VLLM._parse_logprobs`: entries are floats or vLLM `Logprob` objects, and a token
    counts as greedy when it is the dict's highest-logprob key.
    """
    logprobs: list[float] = []
    greedy = np.zeros(len(tokens) - 1, dtype=bool)
    for p in range(1, len(tokens)):
        entry = {t: getattr(lp, "logprob", lp) for t, lp in prompt_logprobs[p].items()}
        logprobs.append(entry[tokens[p]])
        greedy[p - 1] = max(entry, key=entry.get) == tokens[p]
    return logprobs, greedy


@register_model("vllm-rbridge")
class VLLMRBridgeLM(BatchEncodingMixin, VLLM):
    def _encode_many(self, strings: list[str]) -> list[list[int]]:
        return VLLM.tok_encode(self, strings) if strings else []  # vLLM's own batched path

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False):
        chains, leftover = find_chains(
            [(ctx, cont) for _, ctx, cont in requests], max_tokens=self.max_length - 1
        )
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        if leftover:
            stock = super()._loglikelihood_tokens([requests[i] for i in leftover], disable_tqdm)
            for i, answer in zip(leftover, stock, strict=True):
                results[i] = answer
        batch_size = 0 if self.batch_size == "auto" else int(self.batch_size)
        for batch in batches(chains, batch_size):
            outputs = self._model_generate(requests=[list(c.tokens) for c in batch], generate=False)
            for chain, output in zip(batch, outputs, strict=True):
                scores = position_scores(chain.tokens, output.prompt_logprobs)
                for member, answer in zip(
                    chain.members, chain.answers(*scores, total=sum), strict=True
                ):
                    results[member.request] = answer
                    cache_key = requests[member.request][0]
                    if cache_key is not None:
                        self.cache_hook.add_partial("loglikelihood", cache_key, answer)
        return results  # type: ignore[return-value]
