"""`vllm-rbridge`: lm-eval's `VLLM`, plus answers to `rbridge_document` requests.

A thin layer over `document_mode` (encoding and over-length rules shared with `hf-rbridge`): all
documents go to vLLM in ONE `generate` call asking for prompt logprobs (with
`data_parallel_size > 1` lm-eval starts fresh engines on every call, so one call loads each
replica once), and `document_mode.response_from_prompt_logprobs` reads vLLM's answer (tested
without vLLM against the HF path). vLLM returns the top
`TOP_K` logprobs and the trace token's own logprob and rank, so everything but the entropy of the
full distribution is exact; entropy is NaN and the metrics built on it are left out.

Prefix caching is turned off unless asked for: prompt logprobs have been reported to change with
request order when it is on (vLLM issue #42019). Importing this module needs vLLM.
"""

from __future__ import annotations

from lm_eval.api.registry import register_model
from lm_eval.models.vllm_causallms import VLLM

from rbridge_tasks.document_mode import (
    TOP_K,
    DocumentResponse,
    encode_documents,
    request_names,
    response_from_prompt_logprobs,
)
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer


@register_model("vllm-rbridge")
class VLLMRBridgeLM(VLLM):
    def __init__(self, *args, enable_prefix_caching: bool = False, **kwargs) -> None:
        super().__init__(*args, enable_prefix_caching=enable_prefix_caching, **kwargs)

    def rbridge_document(self, requests, disable_tqdm: bool = False) -> list[DocumentResponse]:
        from vllm import SamplingParams

        encoded = encode_documents(
            ProxyTokenizer(self.tokenizer, self.add_bos_token, self.prefix_token_id),
            [request.args for request in requests],
            window=self.max_length - 1,
            prefix_token_id=self.prefix_token_id,
            names=request_names(requests),
            max_length=self.max_length,
        )
        params = SamplingParams(
            temperature=0, prompt_logprobs=TOP_K, max_tokens=1, detokenize=False
        )
        outputs = self._model_generate([d.ids for d in encoded], True, params)
        vocab_size = len(self.tokenizer)
        return [
            response_from_prompt_logprobs(doc, output.prompt_logprobs, vocab_size)
            for doc, output in zip(encoded, outputs, strict=True)
        ]
