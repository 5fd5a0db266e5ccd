"""Hugging Face transformers backend: greedy generation with logprobs, and teacher forcing.

Generation keeps the raw logits of every step (before any logits processor), so a token's logprob
is the model's own probability of the token it emitted, as an API reports it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rbridge_tasks.core.errors import RBridgeError, first_line
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

DTYPES = ("auto", "float32", "bfloat16", "float16")


class HFModel:
    """One local causal LM, used to generate traces or to teacher-force existing ones.

    `model` is a folder or hub id (`local_files_only` when the hub is unreachable);
    `model_name` is what records call it (default `model`); `stop` defaults to
    `completions.default_stops` for the prompt format.

    Raises
    ------
    RBridgeError
        An unknown dtype, a non-positive batch size or token budget, a model transformers
        cannot load, or a tokenizer with neither a pad nor an EOS token.
    """

    def __init__(
        self,
        model: str,
        *,
        model_name: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 1024,
        stop: Sequence[str] | None = None,
        prompt_format: str = "auto",
        local_files_only: bool = False,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in DTYPES:
            raise RBridgeError(f"unknown dtype {dtype!r}; expected one of {list(DTYPES)}")
        if batch_size < 1 or max_new_tokens < 1:
            raise RBridgeError("--batch-size and --max-new-tokens must be positive")
        self.model_name = model_name or model
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.prompt_format = check_prompt_format(prompt_format)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only)
            self.model = AutoModelForCausalLM.from_pretrained(
                model,
                dtype="auto" if dtype == "auto" else getattr(torch, dtype),
                local_files_only=local_files_only,
                # transformers 5 looks for a PEFT adapter without passing local_files_only on
                adapter_kwargs={"local_files_only": local_files_only},
            )
        except (OSError, ValueError) as exc:
            raise RBridgeError(
                f"cannot load model {model!r} with transformers: {first_line(exc)} (offline, "
                "pass a local model folder)"
            ) from exc
        self.model.to(self.device).eval()
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        if self.pad_id is None:
            raise RBridgeError(f"model {model!r}: the tokenizer has neither a pad nor an EOS token")
        self.stops = (
            tuple(stop) if stop is not None else default_stops(self.tokenizer, self.prompt_format)
        )
        config = self.model.config
        self.max_length = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )

    def complete(self, requests: Sequence[GenerationRequest]) -> Iterator[Completion]:
        """Greedy completions in request order, `batch_size` prompts (left-padded) at a time.

        Raises
        ------
        RBridgeError
            A prompt plus `max_new_tokens` does not fit the model (see `too_long`).
        """
        for start in range(0, len(requests), self.batch_size):
            yield from self._generate_batch(requests[start : start + self.batch_size])

    def _generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        import torch

        rendered = [render_prompt(self.tokenizer, r.prompt, self.prompt_format) for r in requests]
        width = max(len(ids) for _, ids in rendered)
        for request, (_, ids) in zip(requests, rendered, strict=True):
            self._check_length(len(ids) + self.max_new_tokens, f"question {request.id!r}")
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for _, ids in rendered])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in rendered])
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.pad_id,
                return_dict_in_generate=True,
                output_logits=True,
                stop_strings=list(self.stops) or None,
                tokenizer=self.tokenizer,
            )
        generated = out.sequences[:, width:].cpu()
        logprobs = torch.stack(out.logits, dim=1).float().log_softmax(-1).cpu()
        chosen = logprobs.gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        steps = generated.shape[1]
        return [
            completion_from_ids(
                self.tokenizer,
                text,
                generated[row].tolist(),
                chosen[row].tolist(),
                stops=self.stops,
                hit_length_limit=steps == self.max_new_tokens,
            )
            for row, (text, _) in enumerate(rendered)
        ]

    def score(
        self, contexts: Sequence[FrontierPrompt], traces: Sequence[str], labels: Sequence[str]
    ) -> list[ScoredTrace]:
        """Teacher-force each trace after its context; logprobs of the trace tokens only."""
        import torch

        rows = []
        for context, trace, label in zip(contexts, traces, labels, strict=True):
            _, context_ids = render_prompt(self.tokenizer, context, self.prompt_format)
            ids, texts = teacher_forcing_ids(self.tokenizer, trace, label)
            self._check_length(len(context_ids) + len(ids), label)
            rows.append((context_ids, ids, texts))
        width = max(len(c) + len(t) for c, t, _ in rows)
        input_ids = torch.tensor(
            [c + t + [self.pad_id] * (width - len(c) - len(t)) for c, t, _ in rows]
        )
        mask = torch.tensor(
            [[1] * (len(c) + len(t)) + [0] * (width - len(c) - len(t)) for c, t, _ in rows]
        )
        with torch.no_grad():
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
        scored = []
        for row, (context_ids, ids, texts) in enumerate(rows):
            first = len(context_ids)
            step_logprobs = logits[row, first - 1 : first - 1 + len(ids)].float().log_softmax(-1)
            target = torch.tensor(ids, device=step_logprobs.device).unsqueeze(-1)
            chosen = step_logprobs.gather(-1, target).squeeze(-1).cpu().tolist()
            scored.append(ScoredTrace(tuple(ids), tuple(texts), tuple(chosen)))
        return scored

    def too_long(self, context: FrontierPrompt, trace: str | None, label: str) -> str | None:
        """Why the prompt and the trace (None: the new tokens) do not fit the model, else None;
        asked before batching so `--skip-too-long` leaves the batches of the others unchanged."""
        _, context_ids = render_prompt(self.tokenizer, context, self.prompt_format)
        if trace is None:
            return self._length_problem(len(context_ids) + self.max_new_tokens, label)
        ids, _ = teacher_forcing_ids(self.tokenizer, trace, label)
        return self._length_problem(len(context_ids) + len(ids), label)

    def _length_problem(self, length: int, label: str) -> str | None:
        if self.max_length is None or length <= self.max_length:
            return None
        return (
            f"{label}: needs {length} tokens (prompt + trace/new tokens), more "
            f"than model {self.model_name!r} handles ({self.max_length})"
        )

    def _check_length(self, length: int, label: str) -> None:
        if (problem := self._length_problem(length, label)) is not None:
            raise RBridgeError(
                f"{problem}; pass --skip-too-long to list such records in the skipped file and "
                "go on"
            )
