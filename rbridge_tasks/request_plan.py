"""Split a trace into `loglikelihood` requests that stock lm-eval backends answer exactly.

Each request is (context = prompt + the trace so far, continuation = the next proxy token). Two
facts about lm-eval shape the split (`TemplateLM._encode_pair`): the context's trailing
whitespace is moved onto the continuation, and the scored tokens are those of
`encode(context + continuation)` beyond `encode(context)`. So a request may score a few tokens
before its own (the whitespace the context ended in), and a cut is only safe where the prefix
tokenizes as a prefix of the whole text.

Every token t gets one request whose scored tokens are [x, t + 1), with all tokens in [x, t)
already known from earlier requests, so `process_results` recovers each token's log-probability
by subtraction. Where no such cut exists (the text ending at token t tokenizes differently, as
BPE merges sometimes do, or the token ends inside a character), consecutive tokens form one unit
whose summed log-probability is all a string-level backend can return. Every request is checked
against the full text's tokenization: a split that lm-eval would score differently is never
emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from rbridge_tasks.errors import RBridgeError
from rbridge_tasks.proxy_tokenizer import ProxyTokenizer


@dataclass(frozen=True)
class Unit:
    """Consecutive proxy tokens [first, end) covering characters [char_start, char_end)."""

    first: int
    end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class RequestPlan:
    requests: tuple[tuple[str, str], ...]
    units: tuple[Unit, ...]
    # character span of each scored token, from the tokenizer's offsets
    token_spans: tuple[tuple[int, int], ...]
    # request i scores the tokens of units request_first_unit[i] .. i; units before i are known
    request_first_unit: tuple[int, ...]
    text: str
    scored_char_start: int
    trace_char_start: int
    total_tokens: int  # of the whole text, as the longest request encodes it

    @property
    def unit_sizes(self) -> np.ndarray:
        return np.array([u.end - u.first for u in self.units])

    @property
    def unit_starts(self) -> np.ndarray:
        """Index of each unit's first token among the scored tokens."""
        return np.array([u.first for u in self.units]) - self.units[0].first

    @property
    def scored_text(self) -> str:
        """The text whose tokens are scored: the trace plus the whitespace lm-eval moves onto it."""
        return self.text[self.scored_char_start :]

    def token_nlls(self, loglikelihoods: list[float]) -> np.ndarray:
        """Each token's NLL: its unit's NLL shared equally (exact for one-token units)."""
        sizes = self.unit_sizes
        return np.repeat(-self.unit_loglikelihoods(loglikelihoods) / sizes, sizes)

    def unit_loglikelihoods(self, loglikelihoods: list[float]) -> np.ndarray:
        """Each unit's log-probability, from the requests' summed log-probabilities."""
        if len(loglikelihoods) != len(self.requests):
            raise RBridgeError(
                f"got {len(loglikelihoods)} results for {len(self.requests)} requests; "
                "the rBridge tasks must build their requests in the same run (request caching "
                "is not supported)"
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
        len(context),
        n,
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
