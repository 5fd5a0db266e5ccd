"""`vllm-rbridge`: lm-eval's `VLLM`, plus answers to `rbridge_document` requests.

A thin layer over `response` (encoding, over-length rules and the response cache shared
with `hf-rbridge`): documents go to vLLM in consecutive chunks of at most
`prompt_tokens_per_call` prompt tokens (a model arg, default 262,144; times
`data_parallel_size`, since lm-eval starts its data-parallel engines afresh on every call), one
`generate` call each asking for prompt logprobs, in vLLM's flat layout where the installed vLLM
has it (`flat_logprobs`). vLLM returns a Python object per prompt position and candidate, about
1.6 KB per position in its nested layout, so one call over ten thousand long documents would
hold tens of GB; a chunk holds about 0.4 GB at most, and each is read into the compact shared
response (`response.response_from_prompt_logprobs`, tested without vLLM against the HF
path) before the next one is sent. vLLM returns the top `TOP_K` logprobs and the trace token's
own logprob and rank, so everything but the entropy of the full distribution is exact; entropy
is None and the metrics built on it are left out.

Prefix caching is turned off unless asked for: prompt logprobs have been reported to change with
request order when it is on (vLLM issue #42019). Importing this module needs vLLM.
"""

from __future__ import annotations

from lm_eval.api.registry import register_model
from lm_eval.models.vllm_causallms import VLLM

from rbridge_tasks.backends.response import (
    TOP_K,
    DocumentResponse,
    encode_documents,
    request_names,
    response_from_prompt_logprobs,
    token_budget_chunks,
    with_response_cache,
)
from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError

PROMPT_TOKENS_PER_CALL = 262_144


@register_model("vllm-rbridge")
class VLLMRBridgeLM(VLLM):
    """lm-eval's `vllm` model that also answers `rbridge_document` from prompt logprobs.

    Model args beyond lm-eval's: `prompt_tokens_per_call` (per data-parallel engine; a
    non-positive or non-integer value raises `RBridgeError` before vLLM starts) and
    `enable_prefix_caching` (default off, see the module docstring).
    """

    def __init__(
        self,
        *args,
        enable_prefix_caching: bool = False,
        prompt_tokens_per_call: int | str = PROMPT_TOKENS_PER_CALL,
        **kwargs,
    ) -> None:
        try:
            budget = int(str(prompt_tokens_per_call).strip())
        except ValueError:
            budget = 0
        if budget <= 0:
            raise RBridgeError(
                f"--model_args prompt_tokens_per_call={prompt_tokens_per_call}: expected a "
                "positive whole number of tokens"
            )
        super().__init__(*args, enable_prefix_caching=enable_prefix_caching, **kwargs)
        self.prompt_tokens_per_call = budget * max(int(self.data_parallel_size), 1)

    def rbridge_document(self, requests, disable_tqdm: bool = False) -> list[DocumentResponse]:
        """Answer each `(context, trace)` request; entropy is None (vLLM returns only the top
        `TOP_K`). Cached and truncated as `HFRBridgeLM.rbridge_document` is."""
        return with_response_cache(self, requests, self._answer)

    def _answer(self, requests) -> list[DocumentResponse]:
        from vllm import SamplingParams

        encoded = encode_documents(
            ProxyTokenizer(self.tokenizer, self.add_bos_token, self.prefix_token_id),
            [request.args for request in requests],
            window=self.max_length - 1,
            prefix_token_id=self.prefix_token_id,
            names=request_names(requests),
            max_length=self.max_length,
        )
        options = {"temperature": 0, "prompt_logprobs": TOP_K, "max_tokens": 1}
        try:
            params = SamplingParams(**options, detokenize=False, flat_logprobs=True)
        except TypeError:  # a vLLM without the flat layout
            params = SamplingParams(**options, detokenize=False)
        vocab_size = len(self.tokenizer)
        responses: list[DocumentResponse] = []
        for chunk in token_budget_chunks(encoded, self.prompt_tokens_per_call):
            docs = [encoded[i] for i in chunk]
            outputs = self._model_generate([d.ids.tolist() for d in docs], True, params)
            responses += [
                response_from_prompt_logprobs(doc, output.prompt_logprobs, vocab_size)
                for doc, output in zip(docs, outputs, strict=True)
            ]
        return responses
