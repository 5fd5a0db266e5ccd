"""Any lm-eval model's answer to `rbridge_document`: the per-token pieces of its `loglikelihood`.

Stock backends (lm-eval's `hf`, `vllm`, API models with logprobs) return one summed
log-probability per `(context, continuation)` request. `answer_with_loglikelihood` splits each
trace into requests (context = prompt + the trace so far, continuation = the next proxy token),
asks the model's own `loglikelihood` for all of them in one call, and rebuilds the per-token
logprobs into the same `DocumentResponse` the one-pass backends give; the statistics a sum cannot
give (entropy, rank, top logprobs) are absent. It costs about `L*Q + L^2/2` tokens of forward
passes for a trace of L tokens after a Q-token question.

Two facts about lm-eval shape the split (`TemplateLM._encode_pair`): the context's trailing
whitespace is moved onto the continuation, and the scored tokens are those of
`encode(context + continuation)` beyond `encode(context)`. So a request may score a few tokens
before its own (the whitespace the context ended in), and a cut is only safe where the prefix
tokenizes as a prefix of the whole text.

Every token t gets one request whose scored tokens are [x, t + 1), with all tokens in [x, t)
already known from earlier requests, so each token's log-probability is recovered by
subtraction. Where no such cut exists (the text ending at token t tokenizes differently, as BPE
merges sometimes do, or the token ends inside a character), consecutive tokens form one group
whose summed log-probability is all a string-level backend can return; each of its tokens gets
the group's mean, and the response says which tokens were grouped. Every request is checked
against the full text's tokenization: a split that lm-eval would score differently is never
emitted. lm-eval cuts each request's context on its own, so a document longer than the model's
window is refused instead of being scored on windows shifted by a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice, pairwise

import numpy as np
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from rbridge_tasks.backends.response import (
    DocumentResponse,
    request_names,
    scored_tokens,
    trace_spans,
    with_response_cache,
)
from rbridge_tasks.backends.tokenizer import ProxyTokenizer
from rbridge_tasks.core.errors import RBridgeError, first_line


@dataclass(frozen=True)
class Unit:
    """Consecutive proxy tokens [first, end) covering characters [char_start, char_end)."""

    first: int
    end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class RequestPlan:
    """One trace as `loglikelihood` requests, and how to turn their sums into per-token logprobs.

    Each request's summed log-probability covers its own unit and possibly earlier units (the
    whitespace lm-eval moves onto the continuation); subtracting the earlier units, known from
    earlier requests, leaves the unit's own (`unit_loglikelihoods`).
    """

    requests: tuple[tuple[str, str], ...]
    units: tuple[Unit, ...]
    # character span of each scored token, from the tokenizer's offsets
    token_spans: tuple[tuple[int, int], ...]
    # request i scores the tokens of units request_first_unit[i] .. i; units before i are known
    request_first_unit: tuple[int, ...]
    text: str
    scored_char_start: int
    prompt_tokens: int  # tokens of the prompt without its trailing whitespace
    token_ids: tuple[int, ...]  # of the tokens after them, as lm-eval encodes the text

    @property
    def unit_sizes(self) -> np.ndarray:
        """Tokens per unit: 1 where a token could be scored on its own."""
        return np.array([u.end - u.first for u in self.units])

    def token_logprobs(self, loglikelihoods: list[float]) -> np.ndarray:
        """Each token's logprob: its unit's shared equally (exact for one-token units)."""
        sizes = self.unit_sizes
        return np.repeat(self.unit_loglikelihoods(loglikelihoods) / sizes, sizes)

    @property
    def token_units(self) -> np.ndarray:
        """The unit of each token after the prompt."""
        return np.repeat(np.arange(len(self.units)), self.unit_sizes)

    def unit_loglikelihoods(self, loglikelihoods: list[float]) -> np.ndarray:
        """Each unit's log-probability, from the requests' summed log-probabilities."""
        if len(loglikelihoods) != len(self.requests):
            raise RBridgeError(
                f"got {len(loglikelihoods)} results for {len(self.requests)} requests"
            )
        values = np.zeros(len(self.units))
        prefix = np.zeros(len(self.units) + 1)
        for i, (ll, first_unit) in enumerate(
            zip(loglikelihoods, self.request_first_unit, strict=True)
        ):
            values[i] = float(ll) - (prefix[i] - prefix[first_unit])
            prefix[i + 1] = prefix[i] + values[i]
        return values


def plan_requests(
    prompt: str, trace: str, tokenizer: ProxyTokenizer, delimiter: str = " ", *, doc_id: str = "?"
) -> RequestPlan:
    """Split `prompt + delimiter + trace` into requests that lm-eval scores exactly as planned.

    Every cut is checked against the whole text's tokenization (see the module docstring);
    tokens that cannot be cut apart become one unit. `doc_id` names the document in errors.

    Raises
    ------
    RBridgeError
        The prompt is empty, the prompt's end and the trace's start merge into one token, the
        trace has no proxy tokens, or the tokenizer appends special tokens or returns offsets
        that go backwards.
    """
    context = prompt + delimiter
    text = context + trace
    scored_start = len(context.rstrip())
    if scored_start == 0:
        raise RBridgeError(
            f"document {doc_id}: the prompt is empty; the trace needs a question as context"
        )
    whole, prompt_enc = tokenizer.encode([text, text[:scored_start]])
    ids, offsets = whole.ids, whole.offsets
    k0 = len(prompt_enc.ids)
    if ids[:k0] != prompt_enc.ids:
        raise RBridgeError(
            f"document {doc_id}: with the proxy tokenizer {tokenizer.name!r} the end of the prompt "
            f"{text[max(0, scored_start - 20) : scored_start]!r} and the start of the trace merge "
            "into one token, so lm-eval cannot score the trace on its own"
        )
    ends = [end for _, end in offsets]
    n = len(ids)
    if n == k0:
        raise RBridgeError(f"document {doc_id}: the trace has no proxy tokens")
    if ends[-1] != len(text) or any(b < a for a, b in pairwise(ends[k0:])):
        raise RBridgeError(
            f"document {doc_id}: the proxy tokenizer {tokenizer.name!r} adds special tokens after "
            "the text or returns non-monotonic offsets; lm-eval would score them as part of the "
            "trace. Pass add_bos_token=False/True in --model_args to control special tokens"
        )

    def cut_char(a: int) -> int:
        return scored_start if a == k0 else ends[a - 1]

    # lm-eval encodes context + continuation (= text up to a token's end) and the context with
    # its trailing whitespace removed; both must be prefixes of the whole text's tokenization.
    token_ends = [text[: ends[t]] for t in range(k0, n - 1)]
    contexts = [text[: cut_char(a)].rstrip() for a in range(k0, n)]
    prefix_len = _prefix_lengths(tokenizer, ids, token_ends + contexts)
    end_ok = [prefix_len[p] == k0 + i + 1 for i, p in enumerate(token_ends)] + [True]
    stripped_at = [prefix_len[c] for c in contexts]

    requests: list[tuple[str, str]] = []
    units: list[Unit] = []
    first_unit: list[int] = []
    unit_index_at = {k0: 0}
    pending = k0
    for t in range(k0, n):
        if not end_ok[t - k0]:
            continue
        a = next(
            (
                a
                for a in range(t, k0 - 1, -1)
                if _usable_cut(stripped_at[a - k0], unit_index_at, cut_char(a), ends[t])
            ),
            None,
        )
        if a is None:  # e.g. a token with no characters: score it together with the next one
            continue
        x = stripped_at[a - k0]
        start_char = cut_char(pending)
        requests.append((text[: cut_char(a)], text[cut_char(a) : ends[t]]))
        units.append(Unit(pending, t + 1, start_char, ends[t]))
        first_unit.append(unit_index_at[x])
        pending = t + 1
        unit_index_at[pending] = len(units)
    return RequestPlan(
        tuple(requests),
        tuple(units),
        tuple(offsets[k0:]),
        tuple(first_unit),
        text,
        scored_start,
        k0,
        tuple(ids[k0:]),
    )


def _usable_cut(
    context_tokens: int | None, unit_index_at: dict[int, int], cut: int, end: int
) -> bool:
    """A cut works if lm-eval's context ends at the start of a unit already planned (so every
    token it scores before this unit's is known) and the continuation is not empty."""
    return context_tokens in unit_index_at and cut < end


def _prefix_lengths(
    tokenizer: ProxyTokenizer, ids: list[int], prefixes: list[str]
) -> dict[str, int | None]:
    """How many of `ids` each prefix text tokenizes to, or None if it is not a prefix of `ids`."""
    unique = list(dict.fromkeys(prefixes))
    lengths: dict[str, int | None] = {}
    for prefix, enc in zip(unique, tokenizer.encode(unique), strict=True):
        lengths[prefix] = len(enc.ids) if ids[: len(enc.ids)] == enc.ids else None
    return lengths


def answer_with_loglikelihood(
    lm: LM, requests: Sequence[Instance], disable_tqdm: bool = False
) -> list[DocumentResponse]:
    """`rbridge_document` for any lm-eval model, from its `loglikelihood` (installed on
    `lm_eval.api.model.LM`; `hf-rbridge` and `vllm-rbridge` override it).

    Raises
    ------
    RBridgeError
        The model has no Hugging Face fast tokenizer to split traces with, a document is longer
        than the model's window, or a trace cannot be split at the proxy's tokens.
    """
    return with_response_cache(lm, requests, lambda todo: _answer(lm, todo, disable_tqdm))


def _answer(lm: LM, requests: list[Instance], disable_tqdm: bool) -> list[DocumentResponse]:
    tokenizer = _tokenizer_of(lm)
    window = getattr(lm, "max_length", None)
    plans = []
    for request, name in zip(requests, request_names(requests), strict=True):
        context, trace = request.args
        if window is not None:
            tokens = len(tokenizer.encode([context + trace])[0].ids)
            if tokens > window - 1:
                raise RBridgeError(
                    f"{name} is {tokens} proxy tokens (context and trace), more than the "
                    f"{window - 1} that a stock backend scores without truncating; its pieces "
                    "cannot be scored consistently. Use `--model hf-rbridge` (or vllm-rbridge), "
                    "which truncates the context once, or drop the document"
                )
        plans.append(plan_requests(context, trace, tokenizer, "", doc_id=name))
    pieces = [
        Instance("loglikelihood", doc=request.doc, arguments=arguments, idx=i,
                 metadata=(request.task_name, request.doc_id, 1))
        for request, plan in zip(requests, plans, strict=True)
        for i, arguments in enumerate(plan.requests)
    ]  # fmt: skip
    results = iter(lm.loglikelihood(pieces, disable_tqdm=disable_tqdm) if pieces else [])
    out = []
    for request, plan in zip(requests, plans, strict=True):
        logprobs = plan.token_logprobs([ll for ll, _ in islice(results, len(plan.requests))])
        context_length = len(request.args[0])
        scored = list(scored_tokens(plan.token_spans, context_length))
        out.append(
            DocumentResponse(
                token_ids=np.asarray([plan.token_ids[i] for i in scored], dtype=np.int32),
                spans=np.asarray(
                    trace_spans([plan.token_spans[i] for i in scored], context_length),
                    dtype=np.int32,
                ).reshape(-1, 2),
                logprobs=logprobs[scored],
                entropy=None,
                rank=None,
                top_logprobs=None,
                vocab_size=None,
                context_tokens=plan.prompt_tokens + scored[0],
                truncated_tokens=None,
                groups=plan.token_units[scored],
            )
        )
    return out


def _tokenizer_of(lm: LM) -> ProxyTokenizer:
    try:  # some backends load theirs on first use, from the hub
        tokenizer, why = getattr(lm, "tokenizer", None), ""
    except Exception as exc:  # the backend's own loader: any error means "none to use"
        tokenizer, why = None, f" ({first_line(exc)})"
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise RBridgeError(
            f"the model backend {type(lm).__name__} has no Hugging Face fast tokenizer{why}, "
            "which rBridge needs to split traces at the proxy's tokens; use --model hf-rbridge "
            "(or vllm-rbridge), or give the backend a Hugging Face tokenizer (for lm-eval's API "
            "models: tokenizer_backend=huggingface)"
        )
    return ProxyTokenizer(
        tokenizer, getattr(lm, "add_bos_token", None), getattr(lm, "prefix_token_id", None)
    )
