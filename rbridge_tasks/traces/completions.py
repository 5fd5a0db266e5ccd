"""What every backend returns, and the token bookkeeping they share.

Local backends (HF, vLLM) work on token ids and need the tokenizer-side code here (prompt
rendering, incremental token texts, EOS and stop-string cuts, teacher-forcing inputs); the
vLLM layer stays thin because all of it is shared with, and tested through, the HF backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from rbridge_tasks.core.errors import RBridgeError
from rbridge_tasks.records.token_text import texts_from_ids, tokens_in_span
from rbridge_tasks.traces.prompts import FrontierPrompt

PROMPT_FORMATS = ("auto", "chat", "completion")
# Base models given a completion prompt tend to go on with a new question of their own.
COMPLETION_STOPS = ("\nQuestion:",)


@dataclass(frozen=True)
class GenerationRequest:
    """One question to complete; `id` labels its completion, errors and the skipped list."""

    id: str
    prompt: FrontierPrompt


@dataclass(frozen=True)
class Completion:
    """A greedy completion with one (text, logprob) per emitted token; texts join to `text`.

    `token_ids` is None for API backends. `finish_reason` is "stop" (EOS or a stop string) or
    "length" (max_new_tokens reached). `prompt` is the exact text sent (chat template applied).
    """

    text: str
    token_texts: tuple[str, ...]
    token_logprobs: tuple[float, ...]
    token_ids: tuple[int, ...] | None
    finish_reason: str
    prompt: str


@dataclass(frozen=True)
class ScoredTrace:
    """A text teacher-forced through a model: its tokens, their texts and logprobs."""

    token_ids: tuple[int, ...]
    token_texts: tuple[str, ...]
    token_logprobs: tuple[float, ...]


class GenerationBackend(Protocol):
    """What `generate` needs of a model: greedy completions with each token's logprob (HF,
    vLLM, an OpenAI-compatible server)."""

    model_name: str
    # Local backends batch with padding, so a question's result depends (by rounding) on its
    # batch; they get fixed batches over the question list (`batch_size`), so a resumed run
    # repeats the same computation. None: requests are independent (API backends).
    batch_size: int | None

    def complete(self, requests: Sequence[GenerationRequest]) -> Iterator[Completion]:
        """Completions in request order, yielded as soon as each (and all before it) is done."""
        ...


class TeacherForcingBackend(Protocol):
    """What `confidences` needs of a model: its logprob of each token of a given trace (local
    models only: an API does not score text it did not write)."""

    model_name: str
    batch_size: int

    def score(
        self, contexts: Sequence[FrontierPrompt], traces: Sequence[str], labels: Sequence[str]
    ) -> list[ScoredTrace]:
        """Each trace teacher-forced after its context; `labels` name records in errors.

        Raises
        ------
        RBridgeError
            The model's tokenizer does not reproduce a trace, or (HF) a context and trace do
            not fit the model.
        """
        ...


def check_prompt_format(prompt_format: str) -> str:
    """`prompt_format`, checked when a backend is built rather than at its first request."""
    if prompt_format not in PROMPT_FORMATS:
        raise RBridgeError(
            f"unknown prompt format {prompt_format!r}; expected one of {list(PROMPT_FORMATS)}"
        )
    return prompt_format


def uses_chat_template(tokenizer, prompt_format: str) -> bool:
    """`auto` means the chat template when the tokenizer has one (an instruct model) and the
    plain completion prompt otherwise; `chat` without a template is an error, not a fallback."""
    if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
        raise RBridgeError(
            "--prompt-format chat needs a tokenizer with a chat template; this "
            "model has none (use --prompt-format completion)"
        )
    return prompt_format == "chat" or (
        prompt_format == "auto" and bool(getattr(tokenizer, "chat_template", None))
    )


def render_prompt(tokenizer, prompt: FrontierPrompt, prompt_format: str) -> tuple[str, list[int]]:
    """The prompt text and its token ids: through the chat template when there is one (auto)."""
    if uses_chat_template(tokenizer, prompt_format):
        text = tokenizer.apply_chat_template(
            prompt.messages(), add_generation_prompt=True, tokenize=False
        )
        return text, list(tokenizer(text, add_special_tokens=False).input_ids)
    return prompt.completion, list(tokenizer(prompt.completion).input_ids)


def default_stops(tokenizer, prompt_format: str) -> tuple[str, ...]:
    """No stop strings for chat (the model ends its turn with EOS); `COMPLETION_STOPS` for a
    completion prompt, where a base model goes on to invent the next question."""
    return () if uses_chat_template(tokenizer, prompt_format) else COMPLETION_STOPS


def completion_from_ids(
    tokenizer,
    prompt_text: str,
    ids: Sequence[int],
    logprobs: Sequence[float],
    *,
    stops: Sequence[str],
    hit_length_limit: bool,
) -> Completion:
    """Token texts for generated ids, cut before the first EOS and the first stop string."""
    eos_ids = _eos_ids(tokenizer)
    end = next((i for i, token in enumerate(ids) if token in eos_ids), len(ids))
    stopped = end < len(ids)
    ids, logprobs = list(ids[:end]), list(logprobs[:end])
    texts = texts_from_ids(tokenizer, ids)
    completion = Completion(
        "".join(texts),
        tuple(texts),
        tuple(logprobs),
        tuple(ids),
        "stop" if stopped or not hit_length_limit else "length",
        prompt_text,
    )
    return cut_at_stop(completion, stops)


def cut_at_stop(completion: Completion, stops: Sequence[str]) -> Completion:
    """The completion up to the earliest stop string (the token straddling it keeps its logprob)."""
    hits = [i for i in (completion.text.find(s) for s in stops if s) if i >= 0]
    if not hits:
        return completion
    return cut_completion(completion, min(hits), finish_reason="stop")


def cut_completion(completion: Completion, end: int, *, finish_reason: str) -> Completion:
    """The completion's first `end` characters, its tokens and logprobs cut at the same place
    (a token straddling `end` keeps its logprob and the part of its text before `end`)."""
    kept = tokens_in_span(completion.token_texts, 0, end)
    indices = [i for i, _ in kept]
    return Completion(
        text=completion.text[:end],
        token_texts=tuple(text for _, text in kept),
        token_logprobs=tuple(completion.token_logprobs[i] for i in indices),
        token_ids=None
        if completion.token_ids is None
        else tuple(completion.token_ids[i] for i in indices),
        finish_reason=finish_reason,
        prompt=completion.prompt,
    )


def teacher_forcing_ids(tokenizer, trace: str, label: str) -> tuple[list[int], list[str]]:
    """Trace token ids (appended to the context's) and their texts, which must join to the trace.

    The trace is tokenized on its own so its tokens cover exactly its characters; a tokenizer
    that cannot reproduce the text (normalisation, unknown characters without byte fallback)
    cannot give every character a confidence, and says so.
    """
    ids = list(tokenizer(trace, add_special_tokens=False).input_ids)
    texts = texts_from_ids(tokenizer, ids)
    joined = "".join(texts)
    if joined != trace:
        at = next(
            (i for i, (a, b) in enumerate(zip(joined, trace, strict=False)) if a != b),
            min(len(joined), len(trace)),
        )
        raise RBridgeError(
            f"{label}: the confidence model's tokenizer does not reproduce the trace (decoding "
            f"its tokens differs at character {at}: {trace[at : at + 20]!r} became "
            f"{joined[at : at + 20]!r}); use a model whose tokenizer is lossless (byte-level BPE "
            f"or byte fallback)"
        )
    return ids, texts


def _eos_ids(tokenizer) -> set[int]:
    eos = tokenizer.eos_token_id
    return set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())
