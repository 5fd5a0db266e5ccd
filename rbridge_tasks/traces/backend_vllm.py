"""vLLM backend: the same generation and teacher forcing as `backend_hf`, on vLLM's engine.

Only the engine calls live here. Prompt rendering, token texts, EOS/stop cuts and the
teacher-forcing inputs are the shared code in `completions.py` that the HF tests exercise; vLLM
supplies token ids and their logprobs (`logprobs=0`: the sampled token's own logprob;
`prompt_logprobs=0`: each prompt token's).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.traces.completions import (
    Completion,
    GenerationRequest,
    ScoredTrace,
    check_prompt_format,
    completion_from_ids,
    default_stops,
    render_prompt,
    teacher_forcing_ids,
)
from rbridge_tasks.traces.prompts import FrontierPrompt


class VLLMModel:
    """One local model on vLLM, for `generate` and `confidences` like `backend_hf.HFModel`.

    Raises `RBridgeError` when vLLM is not installed; vLLM's own errors (no GPU, a model that
    does not fit) pass through, since vLLM words them for the user already.
    """

    def __init__(
        self,
        model: str,
        *,
        model_name: str | None = None,
        dtype: str = "auto",
        batch_size: int = 256,
        max_new_tokens: int = 1024,
        stop: Sequence[str] | None = None,
        prompt_format: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
    ):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RBridgeError(
                "the vllm backend needs vLLM (pip install 'rbridge[vllm]' on a "
                "machine with a supported GPU)"
            ) from exc
        self.model_name = model_name or model
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.prompt_format = check_prompt_format(prompt_format)
        self.llm = LLM(
            model=model,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.stops = (
            tuple(stop) if stop is not None else default_stops(self.tokenizer, self.prompt_format)
        )

    def complete(self, requests: Sequence[GenerationRequest]) -> Iterator[Completion]:
        """Greedy completions in request order, the requests given (one fixed batch of the
        caller's) in one vLLM call, which schedules them itself."""
        from vllm import SamplingParams

        # Stop strings are applied to the token texts afterwards (shared code), not by vLLM,
        # so the kept tokens are cut exactly as for the other backends.
        params = SamplingParams(
            temperature=0.0, max_tokens=self.max_new_tokens, logprobs=0, detokenize=False
        )
        rendered = [render_prompt(self.tokenizer, r.prompt, self.prompt_format) for r in requests]
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for _, ids in rendered], params, use_tqdm=False
        )
        for (text, _), output in zip(rendered, outputs, strict=True):
            sample = output.outputs[0]
            ids = list(sample.token_ids)
            logprobs = [
                step[token].logprob for step, token in zip(sample.logprobs, ids, strict=True)
            ]
            yield completion_from_ids(
                self.tokenizer,
                text,
                ids,
                logprobs,
                stops=self.stops,
                hit_length_limit=sample.finish_reason == "length",
            )

    def score(
        self, contexts: Sequence[FrontierPrompt], traces: Sequence[str], labels: Sequence[str]
    ) -> list[ScoredTrace]:
        """Teacher-force each trace after its context; logprobs of the trace tokens only."""
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False)
        rows = []
        for context, trace, label in zip(contexts, traces, labels, strict=True):
            _, context_ids = render_prompt(self.tokenizer, context, self.prompt_format)
            ids, texts = teacher_forcing_ids(self.tokenizer, trace, label)
            rows.append((context_ids, ids, texts))
        outputs = self.llm.generate(
            [{"prompt_token_ids": c + t} for c, t, _ in rows], params, use_tqdm=False
        )
        scored = []
        for (context_ids, ids, texts), output in zip(rows, outputs, strict=True):
            steps = output.prompt_logprobs[len(context_ids) :]
            logprobs = [step[token].logprob for step, token in zip(steps, ids, strict=True)]
            scored.append(ScoredTrace(tuple(ids), tuple(texts), tuple(logprobs)))
        return scored
